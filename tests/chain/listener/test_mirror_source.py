"""The Hedera Mirror Node source: asc pages of 100 through links.next, restarts, forged logs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from eth_utils.crypto import keccak
from pytest_django.fixtures import Settings

from chain.listener import engine, listener_ensure, listener_poll
from chain.models import ChainEvent, EventListener
from tests.chain.listener.emitter import deploy_emitter, emit
from tests.chain.listener.helpers import chain_tx_keys, stored_keys
from tests.fixtures.mirror_node import FakeMirrorNode

pytestmark = [pytest.mark.chain, pytest.mark.django_db]

UNKNOWN = "0x" + "ee" * 32


def _listener(address: str) -> EventListener:
    return listener_ensure(
        name=f"mirror-{address}", contract_address=address, abi_name="AssetToken", source="MIRROR_NODE"
    )


def _emit_batches(rpc_url: str, emitter: str, sizes: list[int]) -> None:
    for size in sizes:
        emit(rpc_url, emitter, UNKNOWN, count=size)


def test_reads_more_than_a_page_through_next_links_without_gaps_or_duplicates(
    anvil_rpc_url: str, mirror_node: FakeMirrorNode, listener_settings: Settings
) -> None:
    # given 215 logs in transactions of 30 (so pages of 100 end in the middle of a transaction)
    emitter = deploy_emitter(anvil_rpc_url)
    _emit_batches(anvil_rpc_url, emitter, [30] * 7 + [5])
    listener = _listener(emitter)
    # when
    result = listener_poll(listener_id=listener.pk)
    # then every log is stored once, in order
    listener.refresh_from_db()
    assert stored_keys(listener) == chain_tx_keys(anvil_rpc_url, emitter)
    assert result.stored == 215
    assert result.pages == 3
    # and it asked oldest first, 100 at a time, then followed the API's own next links
    queries = [dict(parse_qsl(urlsplit(path).query)) for path in mirror_node.requests]
    assert all(query["order"] == "asc" and query["limit"] == "100" for query in queries)
    assert queries[0]["timestamp"] == "gte:0.000000000"
    assert queries[1]["index"] == "gt:9"  # the 100th log is the 10th of the 4th transaction
    # and the cursor is the last log's consensus timestamp and index
    last = ChainEvent.objects.filter(listener=listener).order_by("-consensus_timestamp", "-log_index").first()
    assert last is not None
    assert (listener.last_processed_timestamp, listener.last_processed_log_index) == (last.consensus_timestamp, 4)


def test_a_crash_in_the_middle_of_a_transaction_loses_and_repeats_nothing(
    anvil_rpc_url: str, mirror_node: FakeMirrorNode, listener_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 150 logs in transactions of 60: the first page ends 40 logs into the second transaction
    emitter = deploy_emitter(anvil_rpc_url)
    _emit_batches(anvil_rpc_url, emitter, [60, 60, 30])
    listener = _listener(emitter)
    pages: list[int] = []

    def crash_on_second_page(listener_id: int, logs: list[object]) -> None:
        pages.append(len(logs))
        if len(pages) == 2:
            raise RuntimeError("worker killed")

    monkeypatch.setattr(engine, "fetch_commit_seam", crash_on_second_page)
    # when the worker dies holding the second page
    with pytest.raises(RuntimeError, match="worker killed"):
        listener_poll(listener_id=listener.pk)
    # then the first page is committed and the cursor points into the second transaction
    listener.refresh_from_db()
    assert stored_keys(listener) == chain_tx_keys(anvil_rpc_url, emitter)[:100]
    assert listener.last_processed_log_index == 39
    # when it restarts (from the cursor: timestamp=gte:T&index=gt:39)
    monkeypatch.undo()
    mirror_node.requests.clear()
    listener_poll(listener_id=listener.pk)
    # then it read exactly the rest
    assert stored_keys(listener) == chain_tx_keys(anvil_rpc_url, emitter)
    assert dict(parse_qsl(urlsplit(mirror_node.requests[0]).query))["index"] == "gt:39"


def test_forged_and_truncated_logs_are_recorded_and_skipped(
    anvil_rpc_url: str, mirror_node: FakeMirrorNode, listener_settings: Settings
) -> None:
    # given real logs with forged ones served in between
    emitter = deploy_emitter(anvil_rpc_url)
    emit(anvil_rpc_url, emitter, UNKNOWN, count=2)
    first = mirror_node.chain_logs()[-1]
    seconds, nanos = first["timestamp"].split(".")
    forged_at = f"{seconds}.{int(nanos) + 500:09d}"
    base = {**first, "timestamp": forged_at, "transaction_hash": "0x" + "f0" * 32}
    snapshot_topic = "0x" + keccak(text="Snapshot(uint256)").hex()
    mirror_node.inject({**base, "index": 0, "topics": [snapshot_topic], "data": "0x00ff"})  # truncated
    mirror_node.inject({**base, "index": 1, "topics": [], "data": "0x"})  # no topics
    mirror_node.inject({**base, "index": 2, "topics": ["0x1234"], "data": "0xnothex"})  # forged topic, bad data
    emit(anvil_rpc_url, emitter, UNKNOWN, count=2)
    listener = _listener(emitter)
    # when
    result = listener_poll(listener_id=listener.pk)
    # then all seven are stored, the forged ones as undecodable, and the stream went past them
    events = ChainEvent.objects.filter(listener=listener)
    assert events.count() == 7
    assert result.undecodable == 7  # the emitter's own logs match no AssetToken event either
    assert set(events.values_list("status", flat=True)) == {ChainEvent.Status.UNDECODABLE}
    assert events.get(tx_hash=base["transaction_hash"], log_index=0).error
    listener.refresh_from_db()
    assert listener.last_error == ""
    assert stored_keys(listener)[-2:] == chain_tx_keys(anvil_rpc_url, emitter)[-2:]


def test_new_logs_between_polls_are_read_once(
    anvil_rpc_url: str, mirror_node: FakeMirrorNode, listener_settings: Settings
) -> None:
    # given a listener that is up to date
    emitter = deploy_emitter(anvil_rpc_url)
    _emit_batches(anvil_rpc_url, emitter, [100])
    listener = _listener(emitter)
    assert listener_poll(listener_id=listener.pk).stored == 100
    # when more logs come, in the same second
    _emit_batches(anvil_rpc_url, emitter, [3, 3])
    second = listener_poll(listener_id=listener.pk)
    third = listener_poll(listener_id=listener.pk)
    # then
    assert (second.stored, third.stored) == (6, 0)
    assert stored_keys(listener) == chain_tx_keys(anvil_rpc_url, emitter)


def test_a_mirror_node_error_is_recorded_and_the_cursor_stays(
    anvil_rpc_url: str, mirror_node: FakeMirrorNode, listener_settings: Settings
) -> None:
    # given a listener pointed at a Mirror Node path that does not exist
    emitter = deploy_emitter(anvil_rpc_url)
    emit(anvil_rpc_url, emitter, UNKNOWN)
    listener_settings.HEDERA_MIRROR_URL = mirror_node.url + "/nowhere"
    listener = _listener(emitter)
    # when
    result = listener_poll(listener_id=listener.pk)
    # then
    listener.refresh_from_db()
    assert "404" in result.error
    assert "404" in listener.last_error
    assert listener.last_processed_timestamp is None
