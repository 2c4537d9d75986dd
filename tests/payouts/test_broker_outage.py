"""Reliability: Redis (broker and locks) stops while distributions are created and started; once it is
back, every distribution completes and every holder is paid once, on anvil.

Each test runs on a Redis of its own (`dedicated_redis`), without persistence, so every message it
held is gone when it stops: the rows in PostgreSQL and the sweepers alone must bring the payouts
home. The payouts sweeper (`distributions_sweep`) sends planning the broker never got; the chain
lane's (`transaction_sweep`) sends batch transactions whose submission the broker never got.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from chain.client import ChainClient
from chain.models import ChainTransaction
from chain.services import transaction_sweep
from payouts import gateway, services
from payouts.models import Distribution, HolderPayment
from payouts.services.operations import distributions_sweep
from tests.fixtures.broker import DedicatedRedis
from tests.fixtures.payouts import DemoAssetFactory
from tests.fixtures.workers import running_worker
from tests.payouts.chainkit import DemoAsset, import_and_wait_synced, wait_finished
from tests.payouts.chainrun import batch_transactions

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

HOLDERS = 120  # three batches of 50, 50 and 20
BALANCES = [1 + (i * 7) % 13 for i in range(HOLDERS)]
REQUEST_BOUND_SECONDS = 2.0
logger = logging.getLogger(__name__)


@pytest.fixture
def small_batches(chain_settings: Settings) -> Settings:
    chain_settings.PAYOUT_BATCH_SIZE = 50
    return chain_settings


def _timed(request: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def _assert_everyone_paid_once(client: ChainClient, demo: DemoAsset, distribution: Distribution) -> None:
    """Each holder's payment-token balance on chain is its planned amount, and each batch was signed once."""
    assert distribution.status == Distribution.Status.COMPLETED, distribution.error
    planned = dict(HolderPayment.objects.filter(distribution=distribution).values_list("holder_address", "amount"))
    on_chain = {gateway.normalize(h): client.erc20_balance(demo.payment_token, h) for h in demo.holders}
    assert on_chain == {address: int(amount) for address, amount in planned.items()}
    assert sum(on_chain.values()) == distribution.computed_total
    assert (distribution.holders_count, distribution.paid_count, distribution.failed_count) == (HOLDERS, HOLDERS, 0)
    rows = batch_transactions(distribution)
    assert len(rows) == distribution.batches_count == 3
    assert all(row.versions.count() == 1 for row in rows)


def test_distributions_created_and_started_through_the_api_while_redis_is_down_complete_once_it_is_back(
    api_client: APIClient,
    small_batches: Settings,
    chain_client: ChainClient,
    demo_asset_factory: DemoAssetFactory,
    dedicated_redis: DedicatedRedis,
) -> None:
    # given two synced assets of 120 holders each, and a scheduled payout of the second
    demos = [
        demo_asset_factory(balances=BALANCES, funding=10**12, salt=salt) for salt in ("outage-now", "outage-later")
    ]
    with running_worker():
        assets = [import_and_wait_synced(demo) for demo in demos]
        scheduled_at = (timezone.now() + timedelta(hours=2)).isoformat()
        later = api_client.post(
            f"/api/v1/assets/{assets[1].pk}/distributions",
            {"subtype": "ONE_OFF", "amount_type": "FIXED", "amount": "500", "scheduled_at": scheduled_at},
            format="json",
        )
        assert later.status_code == 201, later.json()
        # and Redis is stopped
        dedicated_redis.stop()
        # when an IMMEDIATE payout is created and the scheduled one is executed by hand
        created, create_took = _timed(
            lambda: api_client.post(
                f"/api/v1/assets/{assets[0].pk}/distributions",
                {"subtype": "IMMEDIATE", "amount_type": "FIXED", "amount": "1000.000007"},
                format="json",
            )
        )
        executed, execute_took = _timed(lambda: api_client.post(f"/api/v1/distributions/{later.json()['id']}/execute"))
        # then each request answered at once, the work committed though no message could be sent
        assert (created.status_code, executed.status_code) == (201, 202), (created.json(), executed.json())
        assert max(create_took, execute_took) < REQUEST_BOUND_SECONDS
        ids = [created.json()["id"], later.json()["id"]]
        assert (
            list(Distribution.objects.filter(pk__in=ids).values_list("status", "holders_count"))
            == [(Distribution.Status.IN_PROGRESS, None)] * 2
        )

        # when Redis comes back (empty) and the payouts sweeper runs once the planning is overdue
        dedicated_redis.start()
        started = time.monotonic()
        swept = distributions_sweep(
            now=timezone.now() + timedelta(seconds=settings.PAYOUT_STUCK_AFTER_SECONDS) + timedelta(seconds=1)
        )
        # then both distributions complete, every holder paid once
        done = [wait_finished(pk, timeout=240) for pk in ids]
        recovery_took = time.monotonic() - started
    assert swept["plans"] == 2
    for demo, distribution in zip(demos, done, strict=True):
        _assert_everyone_paid_once(chain_client, demo, distribution)
    assert done[0].computed_total == 1_000_000_007
    logger.warning(
        "broker outage (payouts): create %.3fs, execute %.3fs with Redis down, both completed %.1fs after restart",
        create_took,
        execute_took,
        recovery_took,
    )


def test_batches_handed_to_the_chain_lane_while_redis_is_down_are_sent_once_it_is_back(
    small_batches: Settings,
    chain_client: ChainClient,
    demo_asset_factory: DemoAssetFactory,
    dedicated_redis: DedicatedRedis,
) -> None:
    # given a synced asset of 120 holders
    demo = demo_asset_factory(balances=BALANCES, funding=10**12, salt="outage-lane")
    with running_worker():
        asset = import_and_wait_synced(demo)
        # and Redis is stopped
        dedicated_redis.stop()
        # when a distribution is created, planned and its batches handed to the chain lane (the
        # services run here as the worker would run them: no message reaches a worker)
        distribution, create_took = _timed(
            lambda: services.distribution_create(
                asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=1_000_000_007
            )
        )
        while services.distribution_plan_step(distribution_id=distribution.pk):
            pass
        submitted = services.distribution_submit_batches(distribution_id=distribution.pk)
        # then the lane holds the three batch transactions, none sent (their messages were lost)
        assert create_took < REQUEST_BOUND_SECONDS
        assert submitted == 3
        planned = Distribution.objects.get(pk=distribution.pk)
        assert [row.status for row in batch_transactions(planned)] == [ChainTransaction.Status.PENDING] * 3

        # when Redis comes back (empty) and the lane's sweeper runs
        dedicated_redis.start()
        started = time.monotonic()
        swept = transaction_sweep(stale_after=timedelta(0))
        # then the distribution completes, every holder paid once
        done = wait_finished(distribution.pk, timeout=240)
        recovery_took = time.monotonic() - started
    assert swept.resubmitted == 3
    _assert_everyone_paid_once(chain_client, demo, done)
    logger.warning("broker outage (chain lane): completed %.1fs after restart", recovery_took)
