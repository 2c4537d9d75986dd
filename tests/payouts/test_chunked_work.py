"""Holder sync and planning in chunks: no task reads more than PAYOUT_CHUNK_HOLDERS holders, a lost
chunk is resumed where it stopped, and work that makes no progress fails after bounded sweeps.

A 1,000,000-holder asset read in one task would outlive the worker's 360 s hard time limit (killed,
retried from zero, killed again). Here the chunk is a handful of holders, so a few dozen holders on
anvil take several tasks, and every holder still ends up synced, planned and paid exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery.signals import task_prerun
from celery.worker import WorkController
from django.conf import settings
from django.utils import timezone
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from config.locks import redis_client
from payouts import gateway, services
from payouts.models import Asset, AssetHolder, Distribution, HolderPayment
from payouts.tasks import plan_distribution_task, sync_asset_task
from tests.agreements.servers import DiscordServer
from tests.fixtures.payouts import DemoAssetFactory
from tests.fixtures.waiting import wait_for
from tests.fixtures.workers import running_worker
from tests.payouts.chainkit import DemoAsset, wait_finished
from tests.payouts.factories import make_asset, make_distribution

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

HOLDERS = 23
CHUNK = 8  # 23 holders: chunks of 8, 8 and 7
PAGE = 3  # pages do not tile chunks: a chunk ends inside a page
BALANCES = [7 * i + 1 for i in range(HOLDERS)]


@pytest.fixture
def small_chunks(chain_settings: Settings) -> Settings:
    chain_settings.PAYOUT_CHUNK_HOLDERS = CHUNK
    chain_settings.PAYOUT_SYNC_PAGE_SIZE = PAGE
    chain_settings.PAYOUT_BATCH_SIZE = 10
    return chain_settings


@pytest.fixture
def task_runs() -> Iterator[list[str]]:
    """The name of every task the in-process worker starts, in order."""
    runs: list[str] = []

    def record(sender: Any = None, **_: Any) -> None:
        runs.append(sender.name)

    task_prerun.connect(record, weak=False)
    yield runs
    task_prerun.disconnect(record)


def _holders(asset_id: Any) -> dict[str, int]:
    return {a: int(b) for a, b in AssetHolder.objects.filter(asset_id=asset_id).values_list("address", "balance")}


def _expected(demo: DemoAsset) -> dict[str, int]:
    return {gateway.normalize(h): b for h, b in zip(demo.holders, demo.balances, strict=True)}


def _imported(demo: DemoAsset) -> Asset:
    """The asset row as an import leaves it, SYNCING, with no message queued for its sync."""
    return make_asset(
        token_address=gateway.normalize(demo.token),
        payout_contract_address=gateway.normalize(demo.payout),
        payment_token_address=gateway.normalize(demo.payment_token),
        sync_status=Asset.SyncStatus.SYNCING,
        sync_started_at=timezone.now(),
    )


def _lose_queued_messages() -> None:
    """The broker forgets every queued message (Redis restarted empty)."""
    redis_client().flushdb()


def test_a_sync_reads_at_most_a_chunk_of_holders_per_task_and_loads_every_holder(
    small_chunks: Settings,
    task_runs: list[str],
    celery_worker: WorkController,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given a token with 23 holders and a chunk of 8
    demo = demo_asset_factory(balances=BALANCES, funding=10**12, salt="chunksync")
    # when it is imported
    asset = services.asset_import(token_address=demo.token, payout_contract_address=demo.payout)
    synced = wait_for(
        lambda: Asset.objects.exclude(sync_status=Asset.SyncStatus.SYNCING).filter(pk=asset.pk).first(), what="sync"
    )
    # then the sync took one task per chunk (8 + 8 + 7), and loaded every holder
    assert synced.sync_status == Asset.SyncStatus.SYNCED, synced.sync_error
    assert task_runs.count(sync_asset_task.name) == math.ceil(HOLDERS / CHUNK) == 3
    assert _holders(asset.pk) == _expected(demo)
    assert synced.holders_count == HOLDERS


def test_a_sync_whose_next_chunk_was_lost_is_resumed_by_the_sweeper_where_it_stopped(
    small_chunks: Settings,
    task_runs: list[str],
    transactional_db: None,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given a sync whose first chunk ran, and whose next message the broker lost
    demo = demo_asset_factory(balances=BALANCES, funding=10**12, salt="chunklost")
    asset = _imported(demo)
    _lose_queued_messages()
    sync_asset_task(str(asset.pk))  # one task, run here
    assert len(_holders(asset.pk)) == CHUNK
    assert Asset.objects.get(pk=asset.pk).sync_status == Asset.SyncStatus.SYNCING
    _lose_queued_messages()
    # when the sweeper finds it without progress for PAYOUT_SYNC_STUCK_AFTER_SECONDS
    Asset.objects.filter(pk=asset.pk).update(
        updated_at=timezone.now() - timedelta(seconds=settings.PAYOUT_SYNC_STUCK_AFTER_SECONDS) - timedelta(seconds=1)
    )
    with running_worker():
        assert services.distributions_sweep()["syncs"] == 1
        synced = wait_for(
            lambda: Asset.objects.exclude(sync_status=Asset.SyncStatus.SYNCING).filter(pk=asset.pk).first(),
            what="sync",
        )
    # then the sync went on from the holder it stopped at: two more chunks, every holder loaded once
    assert synced.sync_status == Asset.SyncStatus.SYNCED, synced.sync_error
    assert task_runs.count(sync_asset_task.name) == 2
    assert _holders(asset.pk) == _expected(demo)


def test_planning_reads_at_most_a_chunk_of_holders_per_task_and_pays_every_holder_once(
    small_chunks: Settings,
    task_runs: list[str],
    celery_worker: WorkController,
    chain_client: ChainClient,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given a synced asset of 23 holders
    demo = demo_asset_factory(balances=BALANCES, funding=10**12, salt="chunkplan")
    asset = services.asset_sync(asset_id=_imported(demo).pk)
    # when a FIXED payout runs
    total = 1_000_000_007
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=total
    )
    done = wait_finished(distribution.pk)
    # then planning took one task per chunk, and every holder was paid once, exactly the total
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert task_runs.count(plan_distribution_task.name) == math.ceil(HOLDERS / CHUNK) == 3
    paid = {h: chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders}
    assert all(paid.values())
    assert sum(paid.values()) == total
    payments = HolderPayment.objects.filter(distribution=done)
    assert payments.count() == payments.values("holder_address").distinct().count() == HOLDERS
    assert done.snapshot_block is not None


def test_planning_whose_next_chunk_was_lost_is_resumed_by_the_sweeper_where_it_stopped(
    small_chunks: Settings,
    task_runs: list[str],
    transactional_db: None,
    chain_client: ChainClient,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given a started distribution whose first planning chunk ran, and whose next message was lost
    demo = demo_asset_factory(balances=BALANCES, funding=10**12, salt="planlost")
    asset = services.asset_sync(asset_id=_imported(demo).pk)
    total = 999_999_999
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=total
    )
    _lose_queued_messages()
    plan_distribution_task(str(distribution.pk))
    _lose_queued_messages()
    first = Distribution.objects.get(pk=distribution.pk)
    assert first.holders_count is None
    assert first.snapshot_block is not None
    # when the sweeper finds it without progress for PAYOUT_STUCK_AFTER_SECONDS
    Distribution.objects.filter(pk=distribution.pk).update(
        updated_at=timezone.now() - timedelta(seconds=settings.PAYOUT_STUCK_AFTER_SECONDS) - timedelta(seconds=1)
    )
    with running_worker():
        assert services.distributions_sweep()["plans"] == 1
        done = wait_finished(distribution.pk)
    # then planning went on from where it stopped (two more chunks) at the block it pinned first
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert task_runs.count(plan_distribution_task.name) == 2
    assert done.snapshot_block == first.snapshot_block
    assert done.holders_count == HOLDERS
    paid = [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders]
    assert all(paid)
    assert sum(paid) == total


def test_a_distribution_that_cannot_be_planned_fails_with_a_reason_and_one_alert_after_bounded_sweeps(
    transactional_db: None, clean_redis: None, settings: Settings, discord_alerts: DiscordServer
) -> None:
    # given a started distribution that never gets planned (its planner cannot run)
    settings.PAYOUT_MAX_SWEEPS = 3
    distribution = make_distribution(status=Distribution.Status.IN_PROGRESS, amount=1_000, computed_total=None)
    stale = timezone.now() - timedelta(seconds=settings.PAYOUT_STUCK_AFTER_SECONDS) - timedelta(seconds=1)
    Distribution.objects.filter(pk=distribution.pk).update(updated_at=stale)
    # when the sweeper finds it stuck, again and again
    plans = [services.distributions_sweep()["plans"] for _ in range(5)]
    # then it is re-sent a bounded number of times, then failed with a reason a person can act on
    failed = Distribution.objects.get(pk=distribution.pk)
    assert plans == [1, 1, 1, 0, 0]
    assert failed.status == Distribution.Status.FAILED
    assert "no progress" in failed.error
    assert "retry" in failed.error
    (alert,) = discord_alerts.accepted
    assert str(distribution.pk) in str(alert)


def test_a_sync_that_makes_no_progress_fails_with_a_reason_and_one_alert_after_bounded_sweeps(
    transactional_db: None, clean_redis: None, settings: Settings, discord_alerts: DiscordServer
) -> None:
    # given an asset whose sync never progresses (its worker cannot run it)
    settings.PAYOUT_MAX_SWEEPS = 3
    asset = make_asset(sync_status=Asset.SyncStatus.SYNCING, sync_started_at=timezone.now())
    Asset.objects.filter(pk=asset.pk).update(
        updated_at=timezone.now() - timedelta(seconds=settings.PAYOUT_SYNC_STUCK_AFTER_SECONDS) - timedelta(seconds=1)
    )
    # when the sweeper finds it stuck, again and again
    syncs = [services.distributions_sweep()["syncs"] for _ in range(5)]
    # then it is re-sent a bounded number of times, then failed with a reason
    failed = Asset.objects.get(pk=asset.pk)
    assert syncs == [1, 1, 1, 0, 0]
    assert failed.sync_status == Asset.SyncStatus.FAILED
    assert "no progress" in failed.sync_error
    (alert,) = discord_alerts.accepted
    assert str(asset.pk) in str(alert)
