"""Catch-up after downtime or a pause: a recurring series never releases a storm of missed payouts.

The chain tests run the real payout on anvil with a real Celery worker, and check ON CHAIN that each
holder was paid exactly as many shares as occurrences ran.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from celery.worker import WorkController
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from config.errors import Conflict
from payouts import services
from payouts.models import Asset, Distribution, IllegalTransition
from payouts.tasks import run_scheduled_distributions_task
from tests.agreements.servers import DiscordServer, field_of
from tests.fixtures.payouts import ImportedAssetFactory
from tests.fixtures.waiting import wait_for

FINAL = ("COMPLETED", "FAILED")
SHARES = [100, 200, 300]  # what one payout of 600 pays holders with balances 1, 2, 3


def _wait_pause_state(asset: Asset, state: str) -> None:
    """The lane confirmed the toggle (its handler moved the asset), as an operator's next beat would see."""
    wait_for(lambda: Asset.objects.filter(pk=asset.pk, pause_state=state).exists(), what=f"asset {state}")


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


def _series(series_id: uuid.UUID | None) -> list[tuple[int, str]]:
    return list(
        Distribution.objects.filter(series_id=series_id).order_by("occurrence").values_list("occurrence", "status")
    )


@pytest.mark.chain
@pytest.mark.django_db(transaction=True)
def test_a_daily_series_anchored_30_days_ago_runs_once_and_skips_29(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a DAILY series whose first 30 occurrences fell due while the system was down
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=10**9, salt="storm", sync="worker")
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


@pytest.mark.chain
@pytest.mark.django_db(transaction=True)
def test_catch_up_all_runs_every_missed_occurrence(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a DAILY series with catch-up ALL whose first 3 occurrences fell due while the system was down
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=10**9, salt="all", sync="worker")
    first = _daily_series(asset, anchor=timezone.now() - timedelta(days=3) + timedelta(hours=1), catch_up="all")
    assert first.series_id is not None
    # when beat runs the scheduler four times
    _beats(first.series_id, 4)
    # then every missed occurrence ran, one per beat, each paying its full share on chain
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [3 * s for s in SHARES]
    assert _series(first.series_id) == [(0, "COMPLETED"), (1, "COMPLETED"), (2, "COMPLETED"), (3, "SCHEDULED")]
    assert set(Distribution.objects.filter(series_id=first.series_id).values_list("catch_up", flat=True)) == {"all"}


@pytest.mark.django_db
def test_catch_up_none_skips_every_missed_occurrence_and_waits_for_the_next(funded_asset: Asset) -> None:
    # given a DAILY series with catch-up NONE whose first 30 occurrences fell due while the system was down
    asset = funded_asset  # a start reads the payout contract's balance on chain
    anchor = timezone.now() - timedelta(days=30) + timedelta(hours=1)
    first = _daily_series(asset, anchor=anchor, catch_up="none")
    assert first.series_id is not None
    # when the scheduler looks, twice
    services.run_scheduled_distributions()
    services.run_scheduled_distributions()
    # then nothing started: all 30 due occurrences are SKIPPED, the series waits for occurrence 30 (tomorrow)
    assert _series(first.series_id) == [(n, "SKIPPED") for n in range(30)] + [(30, "SCHEDULED")]
    following = Distribution.objects.get(series_id=first.series_id, occurrence=30)
    assert following.scheduled_at == anchor + timedelta(days=30)
    assert following.catch_up == "none"
    reasons = set(Distribution.objects.filter(status="SKIPPED").values_list("status_reason", flat=True))
    assert len(reasons) == 1
    assert "missed while the system was down or the asset was paused" in reasons.pop()
    assert not Distribution.objects.filter(started_at__isnull=False).exists()


@pytest.mark.chain
@pytest.mark.django_db(transaction=True)
def test_unpausing_an_asset_does_not_release_a_storm(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a DAILY series on an asset paused for the last 10 days (the scheduler skipped it meanwhile)
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=10**9, salt="unpause", sync="worker")
    first = _daily_series(asset, anchor=timezone.now() - timedelta(days=10) + timedelta(hours=1))
    assert first.series_id is not None
    services.asset_set_paused(asset_id=asset.pk, paused=True)
    _wait_pause_state(asset, Asset.PauseState.PAUSED)
    assert chain_client.payout_contract_info(demo.payout).paused
    _beats(first.series_id, 2)
    assert _series(first.series_id) == [(0, "SCHEDULED")]
    # when the operator unpauses it (the chain confirms it before the next beat) and beat runs three times
    services.asset_set_paused(asset_id=asset.pk, paused=False)
    _wait_pause_state(asset, Asset.PauseState.ACTIVE)
    assert not chain_client.payout_contract_info(demo.payout).paused
    _beats(first.series_id, 3)
    # then each holder was paid exactly one share, on chain, and the 9 earlier occurrences were skipped
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == SHARES
    assert _series(first.series_id) == [(n, "SKIPPED") for n in range(9)] + [(9, "COMPLETED"), (10, "SCHEDULED")]


def _alerted_series(discord_alerts: DiscordServer) -> list[str]:
    return [field_of(message["embeds"][0], "Series") for message in discord_alerts.messages]


@pytest.mark.django_db(transaction=True)  # alerts go out after commit
def test_one_alert_per_catch_up(discord_alerts: DiscordServer, funded_asset: Asset) -> None:
    # given series 30 days behind (LATEST), 5 days behind (NONE), 3 days behind (ALL), and one on time
    asset = funded_asset  # a start reads the payout contract's balance on chain
    now = timezone.now()
    latest = _daily_series(asset, anchor=now - timedelta(days=30) + timedelta(hours=1))
    none = _daily_series(asset, anchor=now - timedelta(days=5) + timedelta(hours=1), catch_up="none")
    every = _daily_series(asset, anchor=now - timedelta(days=3) + timedelta(hours=1), catch_up="all")
    on_time = _daily_series(asset, anchor=now - timedelta(minutes=1))
    # when the scheduler looks
    services.run_scheduled_distributions()
    # then one alert per series that was behind, however many occurrences it skipped
    assert sorted(_alerted_series(discord_alerts)) == sorted(str(d.series_id) for d in (latest, none, every))
    latest_alert = next(
        m["embeds"][0] for m in discord_alerts.messages if field_of(m["embeds"][0], "Series") == str(latest.series_id)
    )
    assert field_of(latest_alert, "Policy") == "latest"
    assert field_of(latest_alert, "Skipped") == "29 occurrences (0 to 28)"
    # when the rate-limit window has passed and the scheduler looks again (ALL is still catching up)
    time.sleep(1.2)
    services.run_scheduled_distributions()
    # then no new alert: the ALL series' catch-up is the same event
    assert len(discord_alerts.messages) == 3
    assert Distribution.objects.get(series_id=every.series_id, occurrence=1).status == "IN_PROGRESS"
    # when the system is down again for three days
    services.run_scheduled_distributions(now=timezone.now() + timedelta(days=3))
    # then one more alert per series with a new catch-up event (the on-time one fell behind too), and none
    # was ever suppressed: nothing tried to alert per skipped row
    assert sorted(_alerted_series(discord_alerts)[3:]) == sorted(str(d.series_id) for d in (latest, none, on_time))
    assert all(field["name"] != "Suppressed" for m in discord_alerts.messages for field in m["embeds"][0]["fields"])
    assert len(discord_alerts.messages) == 6


@pytest.mark.django_db
def test_missed_occurrences_are_written_in_one_insert(funded_asset: Asset) -> None:
    # given an HOURLY series a year behind: occurrences 0 to 8759 are due
    asset = funded_asset  # a start reads the payout contract's balance on chain
    first = services.distribution_create(
        asset_id=asset.pk,
        subtype="RECURRING",
        recurrence="HOURLY",
        amount_type="FIXED",
        amount=600,
        scheduled_at=timezone.now() + timedelta(minutes=5),
    )
    anchor = timezone.now() - timedelta(days=365) + timedelta(minutes=30)
    Distribution.objects.filter(pk=first.pk).update(scheduled_at=anchor, recurrence_anchor=anchor)
    # when the scheduler looks
    with CaptureQueriesContext(connection) as queries:
        services.run_scheduled_distributions()
    # then 8758 new SKIPPED rows and the latest occurrence took one INSERT; the next occurrence one more
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "payouts_distribution"')]
    assert len(inserts) == 2
    assert _series(first.series_id)[-3:] == [(8758, "SKIPPED"), (8759, "IN_PROGRESS"), (8760, "SCHEDULED")]
    assert Distribution.objects.filter(series_id=first.series_id, status="SKIPPED").count() == 8759


@pytest.mark.django_db
def test_a_failing_catch_up_changes_nothing_and_does_not_stop_the_others(funded_asset: Asset) -> None:
    # given a series whose recurrence is corrupt, and a healthy series, both 30 days behind
    asset = funded_asset  # a start reads the payout contract's balance on chain
    anchor = timezone.now() - timedelta(days=30) + timedelta(hours=1)
    broken = _daily_series(asset, anchor=anchor)
    Distribution.objects.filter(pk=broken.pk).update(recurrence="YEARLY")
    healthy = _daily_series(asset, anchor=anchor)
    # when the scheduler looks
    result = services.run_scheduled_distributions()
    # then the broken one is untouched and the healthy one caught up
    assert result == {"done": 1, "skipped": 0, "failed": 1}
    assert _series(broken.series_id) == [(0, "SCHEDULED")]
    assert _series(healthy.series_id)[28:] == [(28, "SKIPPED"), (29, "IN_PROGRESS"), (30, "SCHEDULED")]


@pytest.mark.django_db
def test_a_skipped_occurrence_can_be_neither_started_nor_cancelled(funded_asset: Asset) -> None:
    # given a series 30 days behind that the scheduler has just caught up
    asset = funded_asset  # a start reads the payout contract's balance on chain
    first = _daily_series(asset, anchor=timezone.now() - timedelta(days=30) + timedelta(hours=1))
    services.run_scheduled_distributions()
    # when an operator presses "execute" on the first (now SKIPPED) occurrence
    with pytest.raises(Conflict, match="SKIPPED"):
        services.distribution_start(distribution_id=first.pk)
    # then it stays SKIPPED, and a SKIPPED occurrence cannot be cancelled either
    with pytest.raises(Conflict):
        services.distribution_cancel(distribution_id=first.pk)
    assert Distribution.objects.get(pk=first.pk).status == "SKIPPED"


def test_skipped_is_final_and_only_reached_from_scheduled() -> None:
    Distribution.MOVES.check("SCHEDULED", "SKIPPED")
    for source in ("IN_PROGRESS", "FAILED", "COMPLETED", "CANCELLED"):
        with pytest.raises(IllegalTransition):
            Distribution.MOVES.check(source, "SKIPPED")
    for target in Distribution.Status.values:
        with pytest.raises(IllegalTransition):
            Distribution.MOVES.check("SKIPPED", target)
