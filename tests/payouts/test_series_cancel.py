"""Cancelling a series occurrence skips only it; cancelling the series ends it for good.

A RECURRING or AUTOMATED series schedules its next occurrence when one starts. Cancelling one
SCHEDULED occurrence must not end the series silently: the next one is scheduled at its own time
(or, AUTOMATED, waits for the next deposit). Cancelling the series (`{"scope": "series"}`) cancels
every SCHEDULED occurrence, and neither the scheduler, nor payment tokens arriving, nor a start
racing the cancel ever creates another.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from celery.worker import WorkController
from django.db import connection
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from chain.client import ChainClient
from chain.listener import listener_poll
from chain.models import EventListener
from payouts import services
from payouts.models import Asset, Distribution
from payouts.services import distributions
from payouts.tasks import run_scheduled_distributions_task
from tests.fixtures.payouts import FundPayout, ImportedAssetFactory
from tests.fixtures.waiting import wait_for
from tests.fixtures.workers import wait_until_idle
from tests.payouts.chainkit import wait_finished
from tests.payouts.factories import make_asset, make_distribution


def _daily(asset: Asset, **extra: Any) -> Distribution:
    return services.distribution_create(
        asset_id=asset.pk,
        subtype="RECURRING",
        recurrence="DAILY",
        amount_type="FIXED",
        amount=1_000,
        scheduled_at=timezone.now() + timedelta(days=1),
        **extra,
    )


def _series(series_id: uuid.UUID | None) -> list[tuple[int, str, str]]:
    return list(
        Distribution.objects.filter(series_id=series_id)
        .order_by("occurrence")
        .values_list("occurrence", "status", "cancel_scope")
    )


def _poll(address: str) -> None:
    listener_poll(listener_id=EventListener.objects.get(contract_address=address).pk)


@pytest.fixture
def event_settings(chain_settings: Settings) -> Settings:
    chain_settings.CHAIN_CONFIRMATIONS = 0
    return chain_settings


@pytest.mark.django_db
def test_cancelling_one_occurrence_skips_only_it_and_the_series_goes_on_at_its_own_time(
    api_client: APIClient, funded_asset: Asset
) -> None:
    # given a DAILY series whose first occurrence is scheduled
    first = _daily(funded_asset)
    assert first.scheduled_at is not None
    # when that occurrence is cancelled (the default scope)
    response = api_client.post(f"/api/v1/distributions/{first.pk}/cancel")
    # then it alone is cancelled, and the next occurrence is scheduled a day later; the reason says so
    assert response.status_code == 200, response.json()
    following = Distribution.objects.filter(series_id=first.series_id, occurrence=1, status="SCHEDULED").first()
    assert following is not None, "cancelling one occurrence ended the whole series"
    assert following.scheduled_at == first.scheduled_at + timedelta(days=1)
    body = response.json()
    assert (body["status"], body["cancel_scope"]) == ("CANCELLED", "occurrence")
    assert "this occurrence only" in body["status_reason"]
    # when the scheduler runs once it is due
    services.run_scheduled_distributions(now=first.scheduled_at + timedelta(days=1))
    # then it starts, and the series goes on
    assert _series(first.series_id) == [
        (0, "CANCELLED", "occurrence"),
        (1, "IN_PROGRESS", ""),
        (2, "SCHEDULED", ""),
    ]


@pytest.mark.django_db
def test_cancelling_the_series_cancels_its_scheduled_occurrence_and_nothing_ever_starts_another(
    api_client: APIClient, funded_asset: Asset
) -> None:
    # given a DAILY series whose first occurrence runs (so the second is scheduled)
    first = _daily(funded_asset)
    assert first.scheduled_at is not None
    services.distribution_start(distribution_id=first.pk)
    second = Distribution.objects.get(series_id=first.series_id, occurrence=1)
    # when the series is cancelled from its running occurrence
    response = api_client.post(f"/api/v1/distributions/{first.pk}/cancel", {"scope": "series"}, format="json")
    # then the running one goes on, the scheduled one is cancelled with the series, saying so
    assert response.status_code == 200, response.json()
    assert (response.json()["id"], response.json()["status"]) == (str(first.pk), "IN_PROGRESS")
    assert _series(first.series_id) == [(0, "IN_PROGRESS", ""), (1, "CANCELLED", "series")]
    shown = api_client.get(f"/api/v1/distributions/{second.pk}").json()
    assert (shown["cancel_scope"], shown["status"]) == ("series", "CANCELLED")
    assert "whole series" in shown["status_reason"]
    # when the scheduler runs every day for a month, and operators try to start it or cancel it again
    for day in range(1, 32):
        services.run_scheduled_distributions(now=first.scheduled_at + timedelta(days=day))
    execute = api_client.post(f"/api/v1/distributions/{second.pk}/execute")
    again = api_client.post(f"/api/v1/distributions/{second.pk}/cancel", {"scope": "series"}, format="json")
    # then nothing started and no occurrence was created
    assert (execute.status_code, again.status_code) == (409, 409)
    assert "already cancelled" in again.json()["detail"]
    assert _series(first.series_id) == [(0, "IN_PROGRESS", ""), (1, "CANCELLED", "series")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "everything"}, "scope"),
        ({"scope": "SERIES"}, "scope"),
        ({"scope": None}, "scope"),
        ({"scopes": "series"}, "scopes"),
    ],
)
def test_a_bad_cancel_scope_is_a_400_naming_the_field_and_cancels_nothing(
    api_client: APIClient, body: dict[str, Any], field: str
) -> None:
    # given a scheduled series
    first = _daily(make_asset())
    # when
    response = api_client.post(f"/api/v1/distributions/{first.pk}/cancel", body, format="json")
    # then
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert _series(first.series_id) == [(0, "SCHEDULED", "")]


@pytest.mark.django_db
def test_only_a_series_can_be_cancelled_as_a_series(api_client: APIClient) -> None:
    # given a one-off payout
    one_off = make_distribution()
    # when it is cancelled as a series, then as itself
    refused = api_client.post(f"/api/v1/distributions/{one_off.pk}/cancel", {"scope": "series"}, format="json")
    cancelled = api_client.post(f"/api/v1/distributions/{one_off.pk}/cancel", {"scope": "occurrence"}, format="json")
    # then the first is a 400 naming the field, the second cancels it
    assert refused.status_code == 400, refused.json()
    assert "only RECURRING and AUTOMATED" in refused.json()["fields"]["scope"][0]
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["cancel_scope"]) == ("CANCELLED", None)


@pytest.mark.django_db(transaction=True)
def test_a_series_cancelled_while_one_of_its_occurrences_starts_still_ends(
    funded_asset: Asset, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a start of occurrence 0 held between its claim and the creation of occurrence 1
    first = _daily(funded_asset)
    at_seam, release = threading.Event(), threading.Event()
    original = distributions._create_next_occurrence

    def held(distribution: Distribution) -> Distribution | None:
        at_seam.set()
        release.wait(20)
        return original(distribution)

    monkeypatch.setattr(distributions, "_create_next_occurrence", held)
    outcomes: dict[str, object] = {}

    def run(name: str, action: Any) -> None:
        try:
            outcomes[name] = action()
        except Exception as exc:
            outcomes[name] = exc
        finally:
            connection.close()

    starter = threading.Thread(
        target=run, args=("start", lambda: services.distribution_start(distribution_id=first.pk))
    )
    starter.start()
    assert at_seam.wait(30)
    # when the series is cancelled at that moment (it waits for the start's transaction)
    canceller = threading.Thread(
        target=run,
        args=("cancel", lambda: services.distribution_cancel(distribution_id=first.pk, scope="series")),
    )
    canceller.start()
    _wait_for_a_lock_wait(seconds=5)
    release.set()
    starter.join(30)
    canceller.join(30)
    # then the start ran, and the occurrence it created was cancelled with the series
    assert isinstance(outcomes["start"], Distribution), outcomes
    assert isinstance(outcomes["cancel"], Distribution), outcomes
    assert _series(first.series_id) == [(0, "IN_PROGRESS", ""), (1, "CANCELLED", "series")]


def _wait_for_a_lock_wait(*, seconds: float) -> None:
    """Until some session of this database waits for a lock (or `seconds` pass: the test then checks the end state)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)


@pytest.mark.chain
@pytest.mark.django_db(transaction=True)
def test_cancelling_one_automated_occurrence_keeps_the_series_waiting_for_the_next_deposit(
    celery_worker: WorkController,
    event_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    fund_payout: FundPayout,
) -> None:
    # given an AUTOMATED 100 % payout on an empty payout contract
    demo, asset = imported_asset_factory(balances=[1, 1, 2], funding=0, salt="ac", sync="worker")
    automated = services.distribution_create(
        asset_id=asset.pk, subtype="AUTOMATED", amount_type="PERCENTAGE", percentage_bps=10_000
    )
    # when its scheduled occurrence is cancelled, then 4,000 base units arrive
    services.distribution_cancel(distribution_id=automated.pk)
    fund_payout(demo, amount=4_000)
    _poll(demo.payment_token)
    # then the series' next occurrence ran on that deposit and paid every holder
    following = wait_for(
        lambda: Distribution.objects.filter(series_id=automated.series_id, occurrence=1).first(), what="occurrence 1"
    )
    done = wait_finished(following.pk)
    assert done.status == "COMPLETED", done.error
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [1_000, 1_000, 2_000]
    assert _series(automated.series_id) == [
        (0, "CANCELLED", "occurrence"),
        (1, "COMPLETED", ""),
        (2, "SCHEDULED", ""),
    ]


@pytest.mark.chain
@pytest.mark.django_db(transaction=True)
def test_a_cancelled_automated_series_is_never_restarted_by_payment_tokens_arriving(
    celery_worker: WorkController,
    event_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    fund_payout: FundPayout,
) -> None:
    # given an AUTOMATED 100 % series that already paid once (its occurrence 1 waits for the next deposit)
    demo, asset = imported_asset_factory(balances=[1, 1, 2], funding=0, salt="as", sync="worker")
    automated = services.distribution_create(
        asset_id=asset.pk, subtype="AUTOMATED", amount_type="PERCENTAGE", percentage_bps=10_000
    )
    fund_payout(demo, amount=4_000)
    _poll(demo.payment_token)
    assert wait_finished(automated.pk).status == "COMPLETED"
    # when the series is cancelled from its finished occurrence, then tokens arrive and the scheduler runs
    services.distribution_cancel(distribution_id=automated.pk, scope="series")
    fund_payout(demo, amount=4_000)
    _poll(demo.payment_token)
    run_scheduled_distributions_task()
    wait_until_idle()  # whatever the deposit or the scheduler enqueued has run
    # then nothing started: the second deposit stays in the contract, the series ended
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [1_000, 1_000, 2_000]
    assert chain_client.erc20_balance(demo.payment_token, demo.payout) == 4_000
    assert _series(automated.series_id) == [(0, "COMPLETED", ""), (1, "CANCELLED", "series")]
