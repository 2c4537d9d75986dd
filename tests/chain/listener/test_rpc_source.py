"""The JSON-RPC source: bounded ranges, halving on errors, confirmations, outages and crashes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from eth_utils.crypto import keccak
from pytest_django.fixtures import Settings

from chain.events import DecodedEvent
from chain.listener import (
    engine,
    event_reprocess,
    listener_ensure,
    listener_poll,
    listener_reset_cursor,
    listener_set_enabled,
)
from chain.models import ChainEvent, EventListener
from tests.chain.listener.emitter import deploy_emitter, emit, rpc
from tests.chain.listener.helpers import chain_log_keys, head, stored_keys
from tests.fixtures.rpc_proxy import RpcProxy

pytestmark = [pytest.mark.chain, pytest.mark.django_db]

UNKNOWN = "0x" + "ee" * 32
SNAPSHOT = "0x" + keccak(text="Snapshot(uint256)").hex()
Register = Callable[[str, str, Callable[[DecodedEvent], None]], None]  # (ABI, event name, processor)


def _listener(
    address: str, *, max_block_range: int = 2000, confirmations: int = 0, start_block: int = 0
) -> EventListener:
    return listener_ensure(
        name=f"rpc-{address}", contract_address=address, abi_name="AssetToken", max_block_range=max_block_range,
        confirmations=confirmations, start_block=start_block,
    )  # fmt: skip


def test_reads_bounded_ranges_to_the_head_without_gaps_or_duplicates(
    anvil_rpc_url: str, rpc_proxy: RpcProxy, listener_settings: Settings
) -> None:
    # given 12 transactions in 12 blocks, 2 logs each, and a listener reading 3 blocks at a time
    emitter = deploy_emitter(anvil_rpc_url)
    for _ in range(12):
        emit(anvil_rpc_url, emitter, UNKNOWN, count=2)
    listener = _listener(emitter, max_block_range=3, confirmations=0)
    # when
    result = listener_poll(listener_id=listener.pk)
    # then every log is stored once, in order, and the cursor is at the head
    listener.refresh_from_db()
    assert stored_keys(listener) == chain_log_keys(anvil_rpc_url, emitter)
    assert result.stored == 24
    assert listener.last_processed_block == head(anvil_rpc_url)
    ranges = [call["params"][0] for call in rpc_proxy.calls if call["method"] == "eth_getLogs"]
    assert all(int(r["toBlock"], 16) - int(r["fromBlock"], 16) < 3 for r in ranges)
    # and a second poll finds nothing new, a third only what came since
    assert listener_poll(listener_id=listener.pk).stored == 0
    emit(anvil_rpc_url, emitter, UNKNOWN, count=3)
    assert listener_poll(listener_id=listener.pk).stored == 3
    assert stored_keys(listener) == chain_log_keys(anvil_rpc_url, emitter)


def test_halves_the_block_range_when_the_node_refuses_a_query(
    anvil_rpc_url: str, rpc_proxy: RpcProxy, listener_settings: Settings
) -> None:
    # given a node that refuses eth_getLogs over more than 2 blocks, and a listener asking for 16
    emitter = deploy_emitter(anvil_rpc_url)
    for _ in range(10):
        emit(anvil_rpc_url, emitter, UNKNOWN)
    rpc_proxy.max_log_range = 2
    listener = _listener(emitter, max_block_range=16, confirmations=0)
    # when
    result = listener_poll(listener_id=listener.pk)
    # then it split the ranges until they passed, and read everything
    listener.refresh_from_db()
    assert result.error == ""
    assert rpc_proxy.rejected_ranges
    assert stored_keys(listener) == chain_log_keys(anvil_rpc_url, emitter)
    assert listener.last_processed_block == head(anvil_rpc_url)


def test_stays_confirmations_blocks_behind_the_head(
    anvil_rpc_url: str, rpc_proxy: RpcProxy, listener_settings: Settings
) -> None:
    # given logs in the last three blocks and a listener waiting for 2 confirmations
    emitter = deploy_emitter(anvil_rpc_url)
    receipts = [emit(anvil_rpc_url, emitter, UNKNOWN) for _ in range(3)]
    listener = _listener(emitter, confirmations=2)
    # when
    listener_poll(listener_id=listener.pk)
    # then only the first of them is stored
    listener.refresh_from_db()
    assert listener.last_processed_block == head(anvil_rpc_url) - 2
    assert [tx for tx, _ in stored_keys(listener)] == [receipts[0]["transactionHash"]]


def test_an_rpc_outage_loses_nothing_and_duplicates_nothing(
    anvil_rpc_url: str, rpc_proxy: RpcProxy, listener_settings: Settings
) -> None:
    # given a listener that read the first logs
    emitter = deploy_emitter(anvil_rpc_url)
    emit(anvil_rpc_url, emitter, UNKNOWN, count=2)
    listener = _listener(emitter, max_block_range=2, confirmations=0)
    listener_poll(listener_id=listener.pk)
    listener.refresh_from_db()
    cursor = listener.last_processed_block
    # when the RPC goes away while the chain moves on
    rpc_proxy.stop()
    for _ in range(5):
        emit(anvil_rpc_url, emitter, UNKNOWN, count=2)
    down = listener_poll(listener_id=listener.pk)
    # then the poll fails visibly and the cursor stays
    listener.refresh_from_db()
    assert "unreachable" in down.error
    assert "unreachable" in listener.last_error
    assert listener.last_processed_block == cursor
    # when it comes back
    rpc_proxy.start()
    up = listener_poll(listener_id=listener.pk)
    # then everything missed is read once and the error is cleared
    listener.refresh_from_db()
    assert up.error == ""
    assert listener.last_error == ""
    assert stored_keys(listener) == chain_log_keys(anvil_rpc_url, emitter)


def test_a_crash_between_fetch_and_commit_loses_nothing(
    anvil_rpc_url: str, rpc_proxy: RpcProxy, listener_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 8 blocks of logs read 2 blocks per page
    emitter = deploy_emitter(anvil_rpc_url)
    deployed_at = head(anvil_rpc_url)
    for _ in range(8):
        emit(anvil_rpc_url, emitter, UNKNOWN, count=2)
    listener = _listener(emitter, max_block_range=2, confirmations=0, start_block=deployed_at)
    pages: list[int] = []

    def crash_on_third_page(listener_id: int, logs: list[object]) -> None:
        pages.append(len(logs))
        if len(pages) == 3:
            raise RuntimeError("worker killed")

    monkeypatch.setattr(engine, "fetch_commit_seam", crash_on_third_page)
    # when the worker dies while holding the third page
    with pytest.raises(RuntimeError, match="worker killed"):
        listener_poll(listener_id=listener.pk)
    # then the first two pages are committed with the cursor right after them, and nothing else
    listener.refresh_from_db()
    first_pages = stored_keys(listener)
    assert 0 < len(first_pages) < 16
    assert first_pages == chain_log_keys(anvil_rpc_url, emitter)[: len(first_pages)]
    assert listener.last_processed_block is not None
    assert ChainEvent.objects.filter(listener=listener, block_number__gt=listener.last_processed_block).count() == 0
    assert "worker killed" in listener.last_error
    # when a new worker polls again
    monkeypatch.undo()
    listener_poll(listener_id=listener.pk)
    # then the stream is complete, each log once
    assert stored_keys(listener) == chain_log_keys(anvil_rpc_url, emitter)


def test_block_timestamps_are_fetched_when_logs_lack_them(
    anvil_rpc_url: str, rpc_proxy: RpcProxy, listener_settings: Settings
) -> None:
    # given a node whose logs carry no blockTimestamp
    rpc_proxy.strip_block_timestamps = True
    emitter = deploy_emitter(anvil_rpc_url)
    receipt = emit(anvil_rpc_url, emitter, UNKNOWN, count=2)
    listener = _listener(emitter)
    # when
    listener_poll(listener_id=listener.pk)
    # then each event has its block's timestamp, asked once for that block
    block = rpc(anvil_rpc_url, "eth_getBlockByNumber", receipt["blockNumber"], False)
    stamps = set(ChainEvent.objects.filter(listener=listener).values_list("block_timestamp", flat=True))
    assert stamps == {dt.datetime.fromtimestamp(int(block["timestamp"], 16), tz=dt.UTC)}
    asked = [call for call in rpc_proxy.calls if call["method"] == "eth_getBlockByNumber"]
    assert len(asked) == 1


def test_resetting_the_cursor_rereads_without_storing_or_processing_twice(
    anvil_rpc_url: str, rpc_proxy: RpcProxy, listener_settings: Settings, processors: Register
) -> None:
    # given a listener that stored and processed its stream
    handled: list[tuple[str, int]] = []
    processors("AssetToken", "Snapshot", lambda event: handled.append((event.tx_hash, event.log_index)))
    emitter = deploy_emitter(anvil_rpc_url)
    emit(anvil_rpc_url, emitter, SNAPSHOT, (1).to_bytes(32, "big"), count=3)
    listener = _listener(emitter)
    listener_poll(listener_id=listener.pk)
    # when an operator resets its cursor and it polls again
    listener_reset_cursor(listener_id=listener.pk)
    again = listener_poll(listener_id=listener.pk)
    # then it re-read the stream and recognised every event
    listener.refresh_from_db()
    assert (again.fetched, again.duplicates, again.stored) == (3, 3, 0)
    assert handled == chain_log_keys(anvil_rpc_url, emitter)
    assert listener.last_processed_block == head(anvil_rpc_url)


def test_a_disabled_listener_is_not_polled(
    anvil_rpc_url: str, rpc_proxy: RpcProxy, listener_settings: Settings
) -> None:
    # given
    emitter = deploy_emitter(anvil_rpc_url)
    emit(anvil_rpc_url, emitter, UNKNOWN)
    listener = _listener(emitter)
    listener_set_enabled(listener_id=listener.pk, enabled=False)
    # when
    result = listener_poll(listener_id=listener.pk)
    # then
    assert result.skipped == "disabled"
    assert not ChainEvent.objects.filter(listener=listener).exists()
    assert not rpc_proxy.calls


def test_a_processor_receives_only_the_events_of_the_abi_it_was_registered_for(
    anvil_rpc_url: str, rpc_proxy: RpcProxy, listener_settings: Settings, processors: Register
) -> None:
    # given a processor of `Snapshot` for payout contracts, and an asset token that emits Snapshot
    elsewhere: list[DecodedEvent] = []
    processors("PayoutContract", "Snapshot", elsewhere.append)
    emitter = deploy_emitter(anvil_rpc_url)
    emit(anvil_rpc_url, emitter, SNAPSHOT, (7).to_bytes(32, "big"), count=2)
    listener = _listener(emitter)
    # when the asset token's listener stores them
    listener_poll(listener_id=listener.pk)
    # then the event name alone reached nobody: the events wait for a processor of their ABI
    events = ChainEvent.objects.filter(listener=listener)
    assert events.count() == 2
    assert elsewhere == []
    assert set(events.values_list("status", flat=True)) == {ChainEvent.Status.NO_PROCESSOR}
    # and a processor of the asset token's Snapshot gets them once reprocessed
    mine: list[DecodedEvent] = []
    processors("AssetToken", "Snapshot", mine.append)
    for event in events:
        event_reprocess(event_id=event.pk)
    assert [event.args["id"] for event in mine] == [7, 7]
    assert elsewhere == []
