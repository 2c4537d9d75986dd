"""The lane behind a node that does not buffer transactions by nonce (Hedera's JSON-RPC relay): a
nonce above the account's mined one is refused ("nonce too high"); the lane keeps it signed, with
its nonce, and sends the same bytes again once the lower ones are mined. Direct service calls on
anvil behind a proxy that refuses exactly as the relay does (tests/fixtures/rpc_proxy.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from chain.localchain import DeployedContracts
from chain.models import ChainTransaction, SignedVersion
from chain.services import (
    transaction_confirm,
    transaction_submit,
    transaction_sweep,
)
from tests.chain.factories import E6, batch_intent, enqueue_batch
from tests.fixtures.chain import AnvilNode
from tests.fixtures.rpc_proxy import RpcProxy

Status = ChainTransaction.Status


@pytest.fixture
def relay(
    anvil: AnvilNode,
    chain_settings: Settings,
    chain_client: ChainClient,
    rpc_proxy_factory: Callable[[str], RpcProxy],
) -> RpcProxy:
    """The lane talks to anvil through a relay-like proxy; anvil mines only when the test says so."""
    proxy = rpc_proxy_factory(anvil.url)
    proxy.relay_nonces = True
    chain_settings.CHAIN_RPC_URL = proxy.url
    anvil.rpc("evm_setAutomine", False)
    return proxy


@pytest.mark.django_db
def test_a_nonce_the_relay_refuses_as_too_high_waits_signed_and_is_sent_once_the_lower_one_is_mined(
    relay: RpcProxy,
    anvil: AnvilNode,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    clean_redis: None,
    handled: list[tuple[str, str]],
) -> None:
    # given: the first transaction accepted by the relay, not mined yet
    intents = [batch_intent(contracts, [holder], [(i + 1) * E6]) for i, holder in enumerate(contracts.holders[:3])]
    rows = [enqueue_batch(contracts, intent) for intent in intents]
    assert transaction_submit(transaction_id=str(rows[0].pk)) == Status.BROADCAST
    # when: the next two are submitted before it is mined
    statuses = [transaction_submit(transaction_id=str(row.pk)) for row in rows[1:]]
    # then: they wait, signed, with the next nonces (no error for the task to retry on)
    for row in rows:
        row.refresh_from_db()
    first_nonce = int(rows[0].nonce or 0)
    assert statuses == [Status.SIGNED, Status.SIGNED]
    assert [row.nonce for row in rows] == [first_nonce, first_nonce + 1, first_nonce + 2]
    assert relay.refused_nonces[0] == first_nonce + 1
    assert all(row.error.startswith("waiting for the lower nonces to be mined") for row in rows[1:])
    # when: the relay's view moves one block at a time and the lane confirms what was mined
    for row in rows:
        anvil.rpc("evm_mine")
        assert transaction_confirm(transaction_id=str(row.pk)) == Status.CONFIRMED
    # then: each was sent in nonce order, with the bytes signed first, and mined once
    assert relay.accepted_nonces == [first_nonce, first_nonce + 1, first_nonce + 2]
    for row in rows:
        row.refresh_from_db()
        (version,) = SignedVersion.objects.filter(transaction=row)
        assert (row.status, row.tx_hash) == (Status.CONFIRMED, version.tx_hash)
    blocks = [int(row.block_number or 0) for row in rows]
    assert blocks == sorted(set(blocks))
    assert [chain_client.erc20_balance(contracts.payment_token, h) for h in contracts.holders[:3]] == [
        E6,
        2 * E6,
        3 * E6,
    ]
    assert sorted(handled) == sorted((row.intent_key, Status.CONFIRMED) for row in rows)


@pytest.mark.django_db
def test_the_sweeper_sends_a_waiting_nonce_once_its_turn_came_without_a_new_nonce(
    relay: RpcProxy,
    anvil: AnvilNode,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    clean_redis: None,
) -> None:
    # given: the second transaction refused while the first waited in the pool, and the first mined
    # without anybody confirming it (its confirm task lost)
    first, second = (enqueue_batch(contracts, batch_intent(contracts, [h], [E6])) for h in contracts.holders[:2])
    transaction_submit(transaction_id=str(first.pk))
    assert transaction_submit(transaction_id=str(second.pk)) == Status.SIGNED
    anvil.rpc("evm_mine")
    # when: the sweeper runs (a lost confirmation and a waiting nonce alike)
    transaction_sweep()
    anvil.rpc("evm_mine")
    transaction_sweep()
    # then: both are confirmed, the second with its first nonce and signature
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (Status.CONFIRMED, Status.CONFIRMED)
    assert second.nonce == int(first.nonce or 0) + 1
    assert SignedVersion.objects.filter(transaction=second).count() == 1
    assert chain_client.erc20_balance(contracts.payment_token, contracts.holders[1]) == E6
