"""The payout contract's and the asset token's events, from both sources, across crashes and outages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from chain.events import DecodedEvent
from chain.listener import engine, listener_ensure, listener_poll
from chain.localchain import DeployedContracts
from chain.models import ChainEvent, EventListener
from chain.signers import LocalKeySigner
from config.roles import APPROVERS_GROUP
from tests.chain.listener.actions import activity
from tests.chain.listener.helpers import chain_log_keys, chain_tx_keys, stored_keys
from tests.fixtures.mirror_node import FakeMirrorNode
from tests.fixtures.rpc_proxy import RpcProxy

pytestmark = [pytest.mark.chain, pytest.mark.django_db]

PROCESSED_EVENTS = (
    ("PayoutContract", "HolderPaid"),
    ("PayoutContract", "PayoutCompleted"),
    ("PayoutContract", "DistributionExecuted"),
    ("AssetToken", "HolderBalanceUpdated"),
    ("AssetToken", "Transfer"),
)


def record_in_database(event: DecodedEvent) -> None:
    """A processor with a visible effect: one row per event it handled (a second run would collide)."""
    Group.objects.create(name=f"{event.event_name}:{event.tx_hash}:{event.log_index}")


def _expected(rpc_url: str, address: str, source: str) -> list[tuple[str, int]]:
    return chain_log_keys(rpc_url, address) if source == "RPC" else chain_tx_keys(rpc_url, address)


@pytest.mark.parametrize("source", ["RPC", "MIRROR_NODE"])
def test_ingests_token_and_payout_events_once_across_a_crash_and_an_outage(
    source: str,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    contracts: DeployedContracts,
    rpc_proxy: RpcProxy,
    mirror_node: FakeMirrorNode,
    listener_settings: Settings,
    processors: Callable[[str, str, Callable[[DecodedEvent], None]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given listeners on the equity token and its payout contract, and processors for their events
    for abi_name, name in PROCESSED_EVENTS:
        processors(abi_name, name, record_in_database)
    token = listener_ensure(
        name="equity-token", contract_address=contracts.equity_token, abi_name="AssetToken", source=source,
        max_block_range=7,
    )  # fmt: skip
    payout = listener_ensure(
        name="equity-payout", contract_address=contracts.equity_payout, abi_name="PayoutContract", source=source,
        max_block_range=7,
    )  # fmt: skip
    # and three rounds of activity: 47 payout logs per batch transaction, so Mirror pages of 100 split one
    for round_ in range(3):
        activity(chain_client, deployer, contracts, round_=round_)
    commits: list[int] = []

    def crash_on_second_commit(listener_id: int, logs: list[object]) -> None:
        commits.append(listener_id)
        if len(commits) == 2:
            raise RuntimeError("worker killed")

    monkeypatch.setattr(engine, "fetch_commit_seam", crash_on_second_commit)
    # when a worker dies between fetching and committing its second page
    with pytest.raises(RuntimeError, match="worker killed"):
        listener_poll(listener_id=payout.pk)
    monkeypatch.undo()
    # and the RPC goes away for a while (the Mirror Node does not depend on it)
    rpc_proxy.stop()
    outage = [listener_poll(listener_id=listener.pk) for listener in (token, payout)]
    activity(chain_client, deployer, contracts, round_=3)
    rpc_proxy.start()
    for listener in (token, payout):
        while listener_poll(listener_id=listener.pk).more:
            pass
    # then every log of both contracts is stored exactly once, in order
    if source == "RPC":
        assert all("unreachable" in result.error for result in outage)
    assert stored_keys(token) == _expected(contracts.rpc_url, contracts.equity_token, source)
    assert stored_keys(payout) == _expected(contracts.rpc_url, contracts.equity_payout, source)
    # and each event reached its processor exactly once
    events = ChainEvent.objects.filter(listener__in=[token, payout])
    handled = events.filter(event_name__in=[name for _, name in PROCESSED_EVENTS])
    assert handled.count() > 200
    assert set(handled.values_list("status", flat=True)) == {ChainEvent.Status.PROCESSED}
    assert Group.objects.exclude(name=APPROVERS_GROUP).count() == handled.count()
    names = Counter(events.values_list("event_name", flat=True))
    assert names["HolderPaid"] == 45 * 4
    assert names["PayoutCompleted"] == 4
    assert names["HolderBalanceUpdated"] >= 12
    # and decoded arguments are stored as JSON with integers as decimal strings
    paid = events.filter(event_name="HolderPaid").first()
    assert paid is not None
    assert paid.args["amount"] == "1"
    assert paid.args["holder"].startswith("0x")
    assert paid.args["distributionId"].startswith("0x")
    assert len(paid.args["distributionId"]) == 66


def test_unknown_forged_and_truncated_events_on_chain_do_not_stop_the_listener(
    chain_client: ChainClient,
    listener_settings: Settings,
    anvil_rpc_url: str,
    processors: Callable[[str, str, Callable[[DecodedEvent], None]], None],
) -> None:
    from eth_utils.crypto import keccak

    from tests.chain.listener.emitter import deploy_emitter, emit

    # given a contract whose ABI we do not know, watched as if it were an asset token
    processors("AssetToken", "Snapshot", record_in_database)
    emitter = deploy_emitter(anvil_rpc_url)
    snapshot = "0x" + keccak(text="Snapshot(uint256)").hex()
    dividend = "0x" + keccak(text="DividendSet(uint256,uint256,uint256,uint256)").hex()
    one = (1).to_bytes(32, "big")
    emit(anvil_rpc_url, emitter, snapshot, one)  # a well-formed Snapshot(1)
    emit(anvil_rpc_url, emitter, "0x" + "ee" * 32, one)  # unknown event
    emit(anvil_rpc_url, emitter, snapshot, one[:5])  # truncated data
    emit(anvil_rpc_url, emitter, snapshot, one + one)  # trailing bytes
    emit(anvil_rpc_url, emitter, dividend, one * 3)  # forged: wrong number of topics
    emit(anvil_rpc_url, emitter, snapshot, (2).to_bytes(32, "big"))  # a well-formed Snapshot(2) after them
    listener = listener_ensure(name="odd", contract_address=emitter, abi_name="AssetToken")
    # when
    result = listener_poll(listener_id=listener.pk)
    # then the stream went past the bad logs, recording each, and processed the good ones
    events = list(ChainEvent.objects.filter(listener=listener).order_by("block_number"))
    assert [event.status for event in events] == [
        "PROCESSED", "UNDECODABLE", "UNDECODABLE", "UNDECODABLE", "UNDECODABLE", "PROCESSED",
    ]  # fmt: skip
    assert [event.args for event in events if event.event_name] == [{"id": "1"}, {"id": "2"}]
    assert all(event.error for event in events if event.status == "UNDECODABLE")
    assert (result.undecodable, result.processed, result.error) == (4, 2, "")
    listener.refresh_from_db()
    assert listener.last_processed_block == events[-1].block_number
    assert EventListener.objects.get(pk=listener.pk).last_error == ""
