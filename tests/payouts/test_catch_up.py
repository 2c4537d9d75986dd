"""Catch-up after downtime or a pause: a recurring series never releases a storm of missed payouts.

The chain tests run the real payout on anvil with a real Celery worker, and check ON CHAIN that each
holder was paid exactly as many shares as occurrences ran.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from celery.worker import WorkController
from django.utils import timezone
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from chain.localchain import DeployedContracts
from chain.signers import LocalKeySigner
from payouts import services
from payouts.models import Asset, Distribution
from payouts.tasks import run_scheduled_distributions_task
from tests.payouts.chainkit import DemoAsset, deploy_asset, wait_for

FINAL = ("COMPLETED", "FAILED")
SHARES = [100, 200, 300]  # what one payout of 600 pays holders with balances 1, 2, 3


def _import(demo: DemoAsset) -> Asset:
    asset = services.asset_import(token_address=demo.token, payout_contract_address=demo.payout)
    synced: Asset = wait_for(
        lambda: Asset.objects.filter(pk=asset.pk).exclude(sync_status=Asset.SyncStatus.SYNCING).first(),
        what="asset sync",
    )
    assert synced.sync_status == Asset.SyncStatus.SYNCED, synced.sync_error
    return synced


def _daily_series(asset: Asset, *, anchor: datetime, **extra: Any) -> Distribution:
    """A DAILY series of 600 created for the future, then moved back to `anchor` (time passed, nothing ran)."""
    first = services.distribution_create(
        asset_id=asset.pk,
        subtype="RECURRING",
        recurrence="DAILY",
        amount_type="FIXED",
        amount=600,
        scheduled_at=timezone.now() + timedelta(minutes=5),
        **extra,
    )
    Distribution.objects.filter(pk=first.pk).update(scheduled_at=anchor, recurrence_anchor=anchor)
    return first


def _beats(series_id: uuid.UUID, count: int) -> list[object]:
    """`count` beats of the scheduler, each waiting for what it started to finish on the real worker."""
    results: list[object] = []
    for _ in range(count):
        # The periodic task's body, as beat would run it; the payouts it starts run on the worker.
        results.append(run_scheduled_distributions_task())
        wait_for(
            lambda: not Distribution.objects.filter(series_id=series_id, status="IN_PROGRESS").exists(),
            timeout=120,
            what="started occurrences to finish",
        )
    return results


def _series(series_id: uuid.UUID) -> list[tuple[int, str]]:
    return list(
        Distribution.objects.filter(series_id=series_id).order_by("occurrence").values_list("occurrence", "status")
    )


@pytest.mark.chain
@pytest.mark.django_db(transaction=True)
def test_a_daily_series_anchored_30_days_ago_runs_once_and_skips_29(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    contracts: DeployedContracts,
) -> None:
    # given a DAILY series whose first 30 occurrences fell due while the system was down
    demo = deploy_asset(
        chain_client, deployer, payment_token=contracts.payment_token, balances=[1, 2, 3], funding=10**9, salt="storm"
    )
    asset = _import(demo)
    first = _daily_series(asset, anchor=timezone.now() - timedelta(days=30) + timedelta(hours=1))
    assert first.series_id is not None
    # when beat comes back and runs the scheduler three times
    _beats(first.series_id, 3)
    # then each holder was paid exactly one share, on chain
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == SHARES
    # and the series shows 29 SKIPPED occurrences, the latest one COMPLETED, the next one SCHEDULED
    rows = _series(first.series_id)
    assert rows == [(n, "SKIPPED") for n in range(29)] + [(29, "COMPLETED"), (30, "SCHEDULED")]
    skipped = Distribution.objects.filter(series_id=first.series_id, status="SKIPPED")
    assert all("occurrence 29 ran instead" in reason for reason in skipped.values_list("status_reason", flat=True))
    following = Distribution.objects.get(series_id=first.series_id, occurrence=30)
    assert following.scheduled_at is not None
    assert following.scheduled_at > timezone.now()
