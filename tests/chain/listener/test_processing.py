"""Processors run atomically with the stored events and the cursor; failures are recorded, not fatal."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from chain.events import DecodedEvent
from chain.listener import engine, event_reprocess, listener_ensure, listener_poll, registry
from chain.localchain import DeployedContracts
from chain.models import ChainEvent, EventListener
from chain.signers import LocalKeySigner
from config.roles import APPROVERS_GROUP
from tests.chain.listener.actions import pay_batch
from tests.chain.listener.helpers import chain_log_keys, head, stored_keys

pytestmark = pytest.mark.chain

Register = Callable[[str, str, Callable[[DecodedEvent], None]], None]  # (ABI, event name, processor)


class WorkerKilled(BaseException):
    """Not an Exception: like a SIGKILL mid-transaction, nothing may catch it."""


def _record(event: DecodedEvent) -> None:
    Group.objects.create(name=f"{event.event_name}:{event.tx_hash}:{event.log_index}")


def _payout_listener(contracts: DeployedContracts, start_block: int) -> EventListener:
    return listener_ensure(
        name="payout", contract_address=contracts.equity_payout, abi_name="PayoutContract", start_block=start_block
    )


@pytest.mark.django_db
def test_a_failing_processor_marks_its_event_failed_and_the_stream_goes_on(
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    contracts: DeployedContracts,
    listener_settings: Settings,
    processors: Register,
) -> None:
    # given a processor that writes, then fails for one holder
    unlucky = contracts.holders[2]

    def flaky(event: DecodedEvent) -> None:
        _record(event)
        if event.args["holder"] == unlucky:
            raise ValueError("holder unknown to the ledger")

    processors("PayoutContract", "HolderPaid", flaky)
    start = head(contracts.rpc_url) + 1
    pay_batch(
        chain_client, deployer, contracts.equity_payout, distribution="d", batch="b", holders=list(contracts.holders)
    )
    listener = _payout_listener(contracts, start)
    # when
    result = listener_poll(listener_id=listener.pk)
    # then that event is FAILED with the error, its partial write is rolled back, the others are done
    paid = ChainEvent.objects.filter(listener=listener, event_name="HolderPaid")
    failed = paid.get(status=ChainEvent.Status.FAILED)
    assert failed.args["holder"] == unlucky
    assert failed.error == "ValueError: holder unknown to the ledger"
    assert paid.filter(status=ChainEvent.Status.PROCESSED).count() == len(contracts.holders) - 1
    assert not Group.objects.filter(name__endswith=f":{failed.log_index}").exists()
    assert Group.objects.exclude(name=APPROVERS_GROUP).count() == len(contracts.holders) - 1
    assert (result.failed, result.error) == (1, "")
    # and events without a processor are kept as NO_PROCESSOR, and the cursor reached the head
    assert ChainEvent.objects.get(listener=listener, event_name="PayoutCompleted").status == "NO_PROCESSOR"
    listener.refresh_from_db()
    assert listener.last_processed_block == head(contracts.rpc_url)

    # when the processor is fixed and an operator reprocesses the event (twice)
    registry.unregister_event_processor("PayoutContract", "HolderPaid")
    processors("PayoutContract", "HolderPaid", _record)
    first = event_reprocess(event_id=failed.pk)
    second = event_reprocess(event_id=failed.pk)
    # then it ran once more, and only once
    assert (first.status, second.status) == ("PROCESSED", "PROCESSED")
    assert first.attempts == 2
    assert Group.objects.exclude(name=APPROVERS_GROUP).count() == len(contracts.holders)


@pytest.mark.django_db
def test_a_crash_inside_the_transaction_rolls_back_events_processor_writes_and_cursor_together(
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    contracts: DeployedContracts,
    listener_settings: Settings,
    processors: Register,
) -> None:
    # given a worker that dies while the third holder's payment is being processed
    calls: list[DecodedEvent] = []

    def dies_on_third(event: DecodedEvent) -> None:
        _record(event)
        calls.append(event)
        if len(calls) == 3:
            raise WorkerKilled

    processors("PayoutContract", "HolderPaid", dies_on_third)
    start = head(contracts.rpc_url) + 1
    pay_batch(
        chain_client, deployer, contracts.equity_payout, distribution="d", batch="b", holders=list(contracts.holders)
    )
    listener = _payout_listener(contracts, start)
    # when
    with pytest.raises(WorkerKilled):
        listener_poll(listener_id=listener.pk)
    # then nothing of that page remains: no event, no processor write, no cursor move
    listener.refresh_from_db()
    assert ChainEvent.objects.filter(listener=listener).count() == 0
    assert Group.objects.exclude(name=APPROVERS_GROUP).count() == 0
    assert listener.last_processed_block is None
    # when the next worker polls
    registry.unregister_event_processor("PayoutContract", "HolderPaid")
    processors("PayoutContract", "HolderPaid", _record)
    listener_poll(listener_id=listener.pk)
    # then every event is stored and processed exactly once
    assert stored_keys(listener) == chain_log_keys(contracts.rpc_url, contracts.equity_payout, start)
    assert ChainEvent.objects.filter(listener=listener, event_name="HolderPaid").count() == len(contracts.holders)
    assert Group.objects.exclude(name=APPROVERS_GROUP).count() == len(contracts.holders)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_polls_of_one_listener_store_and_process_each_event_once(
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    contracts: DeployedContracts,
    listener_settings: Settings,
    processors: Register,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given two batches and a listener reading one block per page
    processors("PayoutContract", "HolderPaid", _record)
    start = head(contracts.rpc_url) + 1
    for batch in ("b1", "b2"):
        pay_batch(
            chain_client, deployer, contracts.equity_payout, distribution=batch, batch=batch,
            holders=list(contracts.holders),
        )  # fmt: skip
    listener = listener_ensure(
        name="payout", contract_address=contracts.equity_payout, abi_name="PayoutContract",
        start_block=start, max_block_range=1,
    )  # fmt: skip
    # and both pollers fetch the same first page before either commits
    barrier = threading.Barrier(2, timeout=10)
    arrivals = itertools.count()

    def meet_at_the_seam(listener_id: int, logs: list[object]) -> None:
        if next(arrivals) < 2:  # the first page of each poller
            barrier.wait()

    monkeypatch.setattr(engine, "fetch_commit_seam", meet_at_the_seam)
    results = []

    def poll() -> None:
        try:
            results.append(listener_poll(listener_id=listener.pk))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=poll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    listener_poll(listener_id=listener.pk)  # the loser stood down; a later poll would finish any rest
    # then one of them stood down, and each event was stored and processed once
    assert sorted(bool(result.skipped) for result in results) == [False, True]
    assert any(result.skipped in {"another poll moved the cursor", "another poll is committing"} for result in results)
    assert ChainEvent.objects.filter(listener=listener, event_name="HolderPaid").count() == 2 * len(contracts.holders)
    assert Group.objects.exclude(name=APPROVERS_GROUP).count() == 2 * len(contracts.holders)
    assert stored_keys(listener) == chain_log_keys(contracts.rpc_url, contracts.equity_payout, start)
