"""Tasks retry what is transient (a service down) and fail fast and visibly on what is not."""

from __future__ import annotations

from typing import Any

import pytest
from celery.signals import task_retry
from celery.worker import WorkController
from pytest_django.fixtures import Settings

from payouts import services
from payouts.models import Asset, Distribution
from tests.fixtures.workers import wait_until_idle
from tests.payouts.chainkit import wait_finished

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def test_planning_that_can_never_work_fails_at_once_with_a_reason_instead_of_retrying(
    celery_worker: WorkController, chain_settings: Settings, funded_asset: Asset
) -> None:
    # given an asset whose token address turned out not to be a token (nothing answers there)
    Asset.objects.filter(pk=funded_asset.pk).update(token_address="0x" + "00" * 19 + "01")
    retries: list[str] = []

    def count(sender: Any = None, **kwargs: Any) -> None:
        retries.append(str(getattr(sender, "name", sender)))

    task_retry.connect(count, weak=False)
    try:
        # when a payout starts and its planning reads the holders
        distribution = services.distribution_create(
            asset_id=funded_asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=1_000
        )
        done = wait_finished(distribution.pk, timeout=30)
        wait_until_idle()  # a retry, had there been one, was scheduled and ran by now
    finally:
        task_retry.disconnect(count)
    # then it failed at once, saying why, and no task was retried for it
    assert done.status == Distribution.Status.FAILED
    assert "could not read the holders from the chain" in done.error
    assert retries == []
