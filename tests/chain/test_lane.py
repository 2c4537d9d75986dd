"""The submission lane against anvil: sign-store-broadcast, confirmation, failures, nonce recovery,
dropped and stuck transactions. Flow tests use a real Celery worker on the Redis broker."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from celery.contrib.testing.worker import start_worker
from pytest_django.fixtures import Settings

from chain import abi
from chain.client import ChainClient
from chain.deploy import build_transaction, call_contract, send_and_wait
from chain.errors import ChainError, Underpriced
from chain.lane import services as lane_services
from chain.localchain import DeployedContracts, deploy_reference_contracts
from chain.models import ChainTransaction, SenderNonce, SignedVersion
from chain.services import (
    transaction_confirm,
    transaction_enqueue,
    transaction_replace,
    transaction_submit,
)
from chain.signers import LocalKeySigner
from config.celery_app import app as celery_app
from config.localservices import LocalService
from tests.chain.factories import batch_intent, enqueue_batch
from tests.fixtures.chain import AnvilNode
from tests.fixtures.waiting import wait_for

Status = ChainTransaction.Status


def _final(ids: list[str]) -> bool:
    return ChainTransaction.objects.filter(pk__in=ids, status__in=Status.final()).count() == len(ids)


# --- direct service calls (one database transaction per test) -------------------------------------
@pytest.mark.django_db
def test_enqueue_is_idempotent_by_intent_key(contracts: DeployedContracts, clean_redis: None) -> None:
    # given
    intent = batch_intent(contracts)
    first = enqueue_batch(contracts, intent)
    # when
    second = enqueue_batch(contracts, intent)
    # then
    assert second.pk == first.pk
    assert ChainTransaction.objects.count() == 1
    with pytest.raises(ValueError, match="already used"):
        transaction_enqueue(intent_key=first.intent_key, purpose="test_batch", to=contracts.equity_payout, data=b"")


@pytest.mark.django_db
def test_submit_stores_the_signed_transaction_then_broadcasts_and_confirms(
    chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None, handled: list[tuple[str, str]]
) -> None:
    # given
    intent = batch_intent(contracts)
    row = enqueue_batch(contracts, intent)
    # when
    status = transaction_submit(transaction_id=str(row.pk))
    confirmed = transaction_confirm(transaction_id=str(row.pk))
    # then
    row.refresh_from_db()
    (version,) = SignedVersion.objects.filter(transaction=row)
    assert (status, confirmed, row.status) == (Status.BROADCAST, Status.CONFIRMED, Status.CONFIRMED)
    assert row.tx_hash == version.tx_hash
    assert version.broadcast_at is not None
    assert row.nonce == chain_client.nonce(row.sender) - 1
    assert row.block_number == chain_client.get_receipt(row.tx_hash).block_number  # type: ignore[union-attr]
    assert chain_client.batch_executed(contracts.equity_payout, intent.batch_id)
    assert handled == [(row.intent_key, Status.CONFIRMED)]


@pytest.mark.django_db
def test_an_intent_whose_gas_estimate_reverts_fails_without_a_nonce(
    chain_client: ChainClient,
    contracts: DeployedContracts,
    deployer: LocalKeySigner,
    clean_redis: None,
    handled: list[tuple[str, str]],
) -> None:
    # given
    send_and_wait(chain_client, deployer, to=contracts.equity_payout, data=abi.encode_pause())
    row = enqueue_batch(contracts, batch_intent(contracts))
    # when
    status = transaction_submit(transaction_id=str(row.pk))
    # then
    row.refresh_from_db()
    assert status == Status.FAILED
    assert (row.nonce, row.error) == (None, "reverted: paused")
    assert not SignedVersion.objects.filter(transaction=row).exists()
    assert handled == [(row.intent_key, Status.FAILED)]


@pytest.mark.django_db
def test_a_nonce_used_by_another_transaction_is_proven_then_the_intent_gets_a_new_nonce(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner, clean_redis: None
) -> None:
    # given: signed and stored (as if the worker died before broadcasting) ...
    intent = batch_intent(contracts)
    row = enqueue_batch(contracts, intent)
    lane_services.transaction_prepare(transaction_id=str(row.pk))
    row.refresh_from_db()
    first_nonce = row.nonce
    # ... and meanwhile someone else used the same key and nonce
    call_contract(chain_client, deployer, "PaymentToken", contracts.payment_token, "mint", [deployer.address, 1])
    # when
    status = transaction_submit(transaction_id=str(row.pk))
    transaction_confirm(transaction_id=str(row.pk))
    # then
    row.refresh_from_db()
    assert status == Status.BROADCAST
    assert row.status == Status.CONFIRMED
    assert row.nonce == first_nonce + 1  # type: ignore[operator]
    assert SignedVersion.objects.filter(transaction=row).count() == 2
    assert SenderNonce.objects.get(sender=deployer.address).next_nonce == first_nonce + 2  # type: ignore[operator]
    assert [chain_client.erc20_balance(contracts.payment_token, h) for h in intent.holders] == intent.amounts


@pytest.mark.django_db
def test_a_chain_id_that_differs_from_the_rpc_is_refused_before_signing(
    chain_settings: Settings, chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None
) -> None:
    # given
    chain_settings.CHAIN_ID = 1
    row = enqueue_batch(contracts, batch_intent(contracts))
    # when / then
    with pytest.raises(ChainError, match="CHAIN_ID is 1 but the RPC serves chain 31337"):
        transaction_submit(transaction_id=str(row.pk))
    row.refresh_from_db()
    assert (row.status, row.nonce) == (Status.PENDING, None)


@pytest.mark.django_db
def test_nonces_follow_the_chain_not_a_stale_counter(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner, clean_redis: None
) -> None:
    # given: a counter row far ahead of the chain (e.g. the chain was reset)
    chain_nonce = chain_client.nonce(deployer.address)
    SenderNonce.objects.create(chain_id=contracts.chain_id, sender=deployer.address, next_nonce=chain_nonce + 5)
    first, second = (enqueue_batch(contracts, batch_intent(contracts, [h], [10**6])) for h in contracts.holders[:2])
    # when
    transaction_submit(transaction_id=str(first.pk))
    transaction_submit(transaction_id=str(second.pk))
    # then
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.nonce, second.nonce) == (chain_nonce, chain_nonce + 1)
    assert transaction_confirm(transaction_id=str(second.pk)) == Status.CONFIRMED
    assert SenderNonce.objects.get(sender=deployer.address).next_nonce == chain_nonce + 2


@pytest.mark.django_db
def test_a_transaction_mined_before_the_crash_is_confirmed_not_resent(
    chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None
) -> None:
    # given: signed, stored, and sent by hand (as if the worker died right after broadcasting)
    intent = batch_intent(contracts)
    row = enqueue_batch(contracts, intent)
    lane_services.transaction_prepare(transaction_id=str(row.pk))
    version = SignedVersion.objects.get(transaction=row)
    chain_client.send_raw_transaction(version.raw_bytes)
    # when: recovery rebroadcasts -> "nonce too low" -> our own receipt
    status = transaction_submit(transaction_id=str(row.pk))
    # then
    row.refresh_from_db()
    assert status == Status.CONFIRMED
    assert row.tx_hash == version.tx_hash
    assert SignedVersion.objects.filter(transaction=row).count() == 1
    assert [chain_client.erc20_balance(contracts.payment_token, h) for h in intent.holders] == intent.amounts


@pytest.mark.django_db
def test_another_senders_transaction_holding_our_nonce_in_the_pool_is_not_pushed_out(
    anvil: AnvilNode,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    deployer: LocalKeySigner,
    clean_redis: None,
) -> None:
    # given: our intent signed with nonce N, and another transaction with nonce N waiting in the pool
    anvil.rpc("evm_setAutomine", False)
    intent = batch_intent(contracts)
    row = enqueue_batch(contracts, intent)
    lane_services.transaction_prepare(transaction_id=str(row.pk))
    row.refresh_from_db()
    mint = abi.encode_call("PaymentToken", "mint", [deployer.address, 1])
    other = deployer.sign_transaction(
        build_transaction(chain_client, deployer, to=contracts.payment_token, data=mint, nonce=row.nonce)
    )
    chain_client.send_raw_transaction(other.raw)
    # when
    with pytest.raises(Underpriced, match="replacement"):
        transaction_submit(transaction_id=str(row.pk))
    versions_while_blocked = SignedVersion.objects.filter(transaction=row).count()
    anvil.rpc("evm_mine")
    assert chain_client.get_receipt(other.tx_hash) is not None
    status = transaction_submit(transaction_id=str(row.pk))
    anvil.rpc("evm_mine")
    # then
    assert versions_while_blocked == 1
    assert status == Status.BROADCAST
    assert transaction_confirm(transaction_id=str(row.pk)) == Status.CONFIRMED
    row.refresh_from_db()
    assert row.nonce == other_nonce_plus_one(chain_client, other.tx_hash)
    assert [chain_client.erc20_balance(contracts.payment_token, h) for h in intent.holders] == intent.amounts


def other_nonce_plus_one(client: ChainClient, tx_hash: str) -> int:
    return int(client.web3.eth.get_transaction(tx_hash)["nonce"]) + 1  # type: ignore[arg-type]


@pytest.mark.django_db
def test_a_dropped_transaction_is_rebroadcast(
    anvil: AnvilNode, chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None
) -> None:
    # given
    anvil.rpc("evm_setAutomine", False)
    intent = batch_intent(contracts)
    row = enqueue_batch(contracts, intent)
    assert transaction_submit(transaction_id=str(row.pk)) == Status.BROADCAST
    row.refresh_from_db()
    anvil.rpc("anvil_dropTransaction", row.tx_hash)
    assert not chain_client.transaction_known(row.tx_hash)
    # when
    assert transaction_confirm(transaction_id=str(row.pk)) == Status.BROADCAST
    anvil.rpc("evm_mine")
    status = transaction_confirm(transaction_id=str(row.pk))
    # then
    assert status == Status.CONFIRMED
    assert chain_client.batch_executed(contracts.equity_payout, intent.batch_id)


@pytest.mark.django_db
def test_a_stuck_transaction_is_replaced_with_higher_fees_and_only_one_lands(
    anvil: AnvilNode, chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None
) -> None:
    # given
    anvil.rpc("evm_setAutomine", False)
    intent = batch_intent(contracts)
    row = enqueue_batch(contracts, intent)
    transaction_submit(transaction_id=str(row.pk))
    row.refresh_from_db()
    stuck_hash, stuck_fee = row.tx_hash, row.max_fee_per_gas
    # when
    replaced = transaction_replace(transaction_id=str(row.pk), fee_bump_percent=20)
    anvil.rpc("evm_mine")
    status = transaction_confirm(transaction_id=str(row.pk))
    # then
    replaced.refresh_from_db()
    assert status == Status.CONFIRMED
    assert replaced.tx_hash != stuck_hash
    assert replaced.max_fee_per_gas >= stuck_fee * 120 // 100
    assert chain_client.get_receipt(stuck_hash) is None
    block = chain_client.web3.eth.get_block(replaced.block_number)  # type: ignore[arg-type]
    assert len(block["transactions"]) == 1
    assert [chain_client.erc20_balance(contracts.payment_token, h) for h in intent.holders] == intent.amounts
    with pytest.raises(lane_services.ReplaceRefused):
        transaction_replace(transaction_id=str(row.pk))


# --- flows through a real Celery worker -----------------------------------------------------------
def test_enqueued_transactions_are_submitted_and_confirmed_by_workers(
    celery_worker: object, chain_client: ChainClient, contracts: DeployedContracts, handled: list[tuple[str, str]]
) -> None:
    # given
    intents = [batch_intent(contracts, [h], [7 * 10**6]) for h in contracts.holders[:3]]
    # when
    rows = [enqueue_batch(contracts, intent) for intent in intents]
    # then
    ids = [str(row.pk) for row in rows]
    wait_for(lambda: _final(ids))
    assert set(ChainTransaction.objects.values_list("status", flat=True)) == {Status.CONFIRMED}
    assert sorted(key for key, _ in handled) == sorted(row.intent_key for row in rows)
    assert [chain_client.erc20_balance(contracts.payment_token, h) for h in contracts.holders[:3]] == [7 * 10**6] * 3


def test_twenty_transactions_back_to_back_share_a_few_blocks(
    transactional_db: None,
    clean_redis: None,
    settings: Settings,
    anvil_factory: Callable[..., LocalService],
    chain_settings: Settings,
) -> None:
    # given: a chain that mines one block per second
    node = anvil_factory()
    contracts = deploy_reference_contracts(node.url, holders=20)
    client = ChainClient(node.url)
    client.web3.provider.make_request("evm_setIntervalMining", [1])  # type: ignore[arg-type]
    settings.CHAIN_RPC_URL = node.url
    intents = [batch_intent(contracts, [holder], [10**6]) for holder in contracts.holders]
    with start_worker(celery_app, pool="threads", concurrency=4, perform_ping_check=False, loglevel="WARNING"):
        # when
        started = time.monotonic()
        rows = [enqueue_batch(contracts, intent) for intent in intents]
        ids = [str(row.pk) for row in rows]
        wait_for(lambda: not ChainTransaction.objects.filter(pk__in=ids, status=Status.PENDING).exists())
        all_sent = time.monotonic() - started
        wait_for(lambda: _final(ids), timeout=60)
    # then
    finished = list(ChainTransaction.objects.filter(pk__in=ids))
    blocks = {row.block_number for row in finished}
    nonces = sorted(int(row.nonce or 0) for row in finished)
    print(f"\n20 transactions signed and sent in {all_sent:.2f}s, mined in {len(blocks)} blocks")  # noqa: T201
    assert {row.status for row in finished} == {Status.CONFIRMED}
    assert nonces == list(range(nonces[0], nonces[0] + 20))
    assert len(blocks) <= 5
    assert all(client.erc20_balance(contracts.payment_token, h) == 10**6 for h in contracts.holders)
