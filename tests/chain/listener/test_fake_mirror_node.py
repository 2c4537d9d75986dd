"""The fake Mirror Node behaves like the real one where our client depends on it."""

from __future__ import annotations

import pytest
import requests

from tests.chain.listener.emitter import deploy_emitter, emit, rpc
from tests.fixtures.mirror_node import FakeMirrorNode

TOPIC = "0x" + "ab" * 32


def _get(node: FakeMirrorNode, path_and_query: str) -> requests.Response:
    return requests.get(node.url + path_and_query, timeout=10)


def test_defaults_are_the_real_ones_desc_and_25(anvil_rpc_url: str, mirror_node: FakeMirrorNode) -> None:
    # given 30 logs of one contract
    emitter = deploy_emitter(anvil_rpc_url)
    for _ in range(3):
        emit(anvil_rpc_url, emitter, TOPIC, count=10)
    # when a client forgets order and limit
    body = _get(mirror_node, f"/api/v1/contracts/{emitter}/results/logs").json()
    # then it gets the 25 newest, newest first, and a next link going further back
    stamps = [(log["timestamp"], log["index"]) for log in body["logs"]]
    assert len(stamps) == 25
    assert stamps == sorted(stamps, reverse=True)
    assert "timestamp=lte:" in body["links"]["next"]
    assert "index=lt:" in body["links"]["next"]


def test_following_next_links_in_ascending_order_yields_every_log_once(
    anvil_rpc_url: str, mirror_node: FakeMirrorNode
) -> None:
    # given 7 transactions of 4 logs each (28 logs)
    emitter = deploy_emitter(anvil_rpc_url)
    hashes = [emit(anvil_rpc_url, emitter, TOPIC, count=4)["transactionHash"] for _ in range(7)]
    # when reading 5 at a time (pages end in the middle of transactions)
    seen: list[tuple[str, int]] = []
    url: str | None = f"/api/v1/contracts/{emitter}/results/logs?order=asc&limit=5&timestamp=gte:0"
    while url:
        body = _get(mirror_node, url).json()
        seen += [(log["transaction_hash"], log["index"]) for log in body["logs"]]
        url = body["links"]["next"]
    # then each log came once, in chain order, with transaction-local indexes
    assert seen == [(tx_hash, index) for tx_hash in hashes for index in range(4)]
    assert len(rpc(anvil_rpc_url, "eth_getLogs", {"address": emitter, "fromBlock": "0x0"})) == 28


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=101", "Invalid parameter: limit"),
        ("limit=0", "Invalid parameter: limit"),
        ("order=sideways", "Invalid parameter: order"),
        ("timestamp=gt:yesterday", "Invalid parameter: timestamp"),
        ("timestamp=gt:1&timestamp=gte:2", "Only one gt/gte operator is allowed for timestamp"),
        ("index=gt:1", "index without a timestamp parameter filter"),
        ("timestamp=gt:1&index=gt:1", "timestamp must have gte or eq operator"),
        ("timestamp=ne:1", "Not equal (ne) operator is not supported for timestamp"),
        ("order=asc&from=0.0.2", "Unknown query parameter: from"),
    ],
)
def test_rejects_what_the_real_api_rejects(
    anvil_rpc_url: str, mirror_node: FakeMirrorNode, query: str, message: str
) -> None:
    # when
    response = _get(mirror_node, f"/api/v1/contracts/0x5FbDB2315678afecb367f032d93F642f64180aa3/results/logs?{query}")
    # then
    assert response.status_code == 400
    assert response.json() == {"_status": {"messages": [{"message": message}]}}
