"""The sweeper handles each transaction on its own: a failing handler or a row locked elsewhere never
stops it from confirming the others; failed handlers are run again, then alerted. Against anvil,
real PostgreSQL and the local Discord."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator

import pytest
from django.db import connection, transaction
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from chain.lane import base as lane_base
from chain.lane import services as lane_services
from chain.localchain import DeployedContracts
from chain.models import ChainTransaction
from chain.services import register_transaction_handler, transaction_submit, unregister_transaction_handler
from tests.agreements.servers import DiscordServer, field_of
from tests.chain.factories import batch_intent, enqueue_batch

Status = ChainTransaction.Status
NOW = datetime.timedelta(0)

pytestmark = pytest.mark.django_db(transaction=True)


class HandlerRefused(Exception):
    """What an app's handler raising on one transaction looks like."""


class SelectiveHandler:
    """A test purpose's handler that raises for the intent keys in `refuse` and records the rest."""

    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.handled: list[tuple[str, str]] = []

    def __call__(self, row: ChainTransaction) -> None:
        if row.intent_key in self.refuse:
            raise HandlerRefused(f"cannot handle {row.intent_key}")
        self.handled.append((row.intent_key, str(row.status)))


@pytest.fixture
def handler() -> Iterator[SelectiveHandler]:
    selective = SelectiveHandler()
    register_transaction_handler("test_sweep", selective)
    yield selective
    unregister_transaction_handler("test_sweep")


def _mined_but_unconfirmed(contracts: DeployedContracts, count: int) -> list[ChainTransaction]:
    """`count` transactions broadcast and mined (anvil automines), none recorded yet: the confirm
    tasks were lost with the broker, so only the sweeper can record them."""
    rows = [
        enqueue_batch(contracts, batch_intent(contracts, [holder], [10**6]), purpose="test_sweep")
        for holder in contracts.holders[:count]
    ]
    for row in rows:
        assert transaction_submit(transaction_id=str(row.pk)) == Status.BROADCAST
    return rows


def test_a_failing_handler_is_recorded_and_the_sweep_confirms_every_other_transaction(
    chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None, handler: SelectiveHandler
) -> None:
    # given three mined transactions in nonce order, whose handler raises for the second one
    good, bad, later = _mined_but_unconfirmed(contracts, 3)
    handler.refuse.add(bad.intent_key)
    # when the sweeper runs
    lane_services.transaction_sweep()
    # then all three are CONFIRMED: the chain's facts are recorded whatever the handler did
    for row in (good, bad, later):
        row.refresh_from_db()
    assert [row.status for row in (good, bad, later)] == [Status.CONFIRMED] * 3
    assert all(chain_client.get_receipt(row.tx_hash) is not None for row in (good, bad, later))
    # ... the good ones' handler ran, the bad one carries its error and one attempt
    assert handler.handled == [(good.intent_key, Status.CONFIRMED), (later.intent_key, Status.CONFIRMED)]
    assert bad.handler_error == f"HandlerRefused: cannot handle {bad.intent_key}"
    assert (bad.handler_attempts, good.handler_attempts, good.handler_error) == (1, 1, "")


def test_a_row_locked_elsewhere_past_the_lock_timeout_does_not_stop_the_sweep(
    chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None, handler: SelectiveHandler
) -> None:
    # given three mined transactions, the first one's row held locked by another session
    first, second, third = _mined_but_unconfirmed(contracts, 3)
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        try:
            with transaction.atomic():
                ChainTransaction.objects.select_for_update().get(pk=first.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert locked.wait(timeout=10)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")
    try:
        # when the sweeper runs
        lane_services.transaction_sweep()
    finally:
        release.set()
        holder.join()
    # then the locked one waits for the next sweep, the others are confirmed and handled
    states = [ChainTransaction.objects.get(pk=row.pk).status for row in (first, second, third)]
    assert states == [Status.BROADCAST, Status.CONFIRMED, Status.CONFIRMED]
    assert [key for key, _ in handler.handled] == [second.intent_key, third.intent_key]
    # ... and once the lock is gone, the next sweep records it
    lane_services.transaction_sweep()
    assert ChainTransaction.objects.get(pk=first.pk).status == Status.CONFIRMED


def test_a_failed_handler_is_run_again_by_the_sweeper_then_alerted_once_when_its_attempts_run_out(
    chain_client: ChainClient,
    contracts: DeployedContracts,
    clean_redis: None,
    handler: SelectiveHandler,
    discord_alerts: DiscordServer,
    settings: Settings,
) -> None:
    # given two confirmed transactions whose handler failed (a bug in the app, say)
    settings.ALERT_RATE_LIMIT_SECONDS = 600
    healed, broken = _mined_but_unconfirmed(contracts, 2)
    handler.refuse.update({healed.intent_key, broken.intent_key})
    lane_services.transaction_sweep()
    assert ChainTransaction.objects.filter(handler_attempts=1).exclude(handler_error="").count() == 2
    # when the cause is fixed for one of them and the sweeper keeps running (no waits between runs)
    handler.refuse.discard(healed.intent_key)
    for _ in range(lane_base.HANDLER_MAX_ATTEMPTS + 2):
        lane_services.transaction_sweep(stale_after=NOW)
    # then the fixed one's handler ran once and its error is gone
    healed.refresh_from_db()
    broken.refresh_from_db()
    assert handler.handled == [(healed.intent_key, Status.CONFIRMED)]
    assert (healed.handler_error, healed.handler_attempts) == ("", 2)
    # ... the other one was tried a bounded number of times, still CONFIRMED, and alerted once
    assert broken.status == Status.CONFIRMED
    assert broken.handler_attempts == lane_base.HANDLER_MAX_ATTEMPTS
    assert broken.handler_error == f"HandlerRefused: cannot handle {broken.intent_key}"
    (alert,) = discord_alerts.accepted
    (embed,) = alert["embeds"]
    assert field_of(embed, "transaction") == str(broken.pk)
    assert "Run handler again" in embed["description"]
