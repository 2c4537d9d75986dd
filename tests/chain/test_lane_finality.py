"""A transaction's result is final only from a receipt CHAIN_CONFIRMATIONS blocks deep whose block
is still canonical; until then it is MINED and its handler has not run. A block reorganised away
sends the lane back to waiting for the transaction (re-sending the stored bytes if the node dropped
it). Direct service calls on an anvil started for each test, mined by hand, reorganised with
`anvil_reorg`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from chain.lane import services as lane_services
from chain.lane.base import CONFIRM_DELAY_SECONDS
from chain.lane.tasks import confirm_transaction_task
from chain.localchain import DeployedContracts, deploy_reference_contracts
from chain.models import ChainTransaction, SignedVersion
from chain.services import (
    transaction_confirm,
    transaction_submit,
)
from config.localservices import LocalService
from tests.chain.factories import batch_intent, enqueue_batch

Status = ChainTransaction.Status


@pytest.mark.django_db
def test_a_receipt_is_final_only_confirmations_deep_and_a_reorged_out_one_is_mined_again_before_its_handler_runs(
    chain_settings: Settings,
    anvil_factory: Callable[..., LocalService],
    clean_redis: None,
    handled: list[tuple[str, str]],
) -> None:
    # given: a chain of our own, mined by hand, and one confirmation required
    node = anvil_factory()
    contracts = deploy_reference_contracts(node.url, holders=2)
    client = ChainClient(node.url)
    chain_settings.CHAIN_RPC_URL = node.url
    chain_settings.CHAIN_CONFIRMATIONS = 1
    client.web3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    intent = batch_intent(contracts)
    row = enqueue_batch(contracts, intent)
    assert transaction_submit(transaction_id=str(row.pk)) == Status.BROADCAST
    # when: it is mined, with no block on top yet
    client.web3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    status = transaction_confirm(transaction_id=str(row.pk))
    # then: mined, not final, nobody told
    assert handled == [], "the handler ran from a receipt 0 blocks deep"
    row.refresh_from_db()
    old_block = client.web3.eth.get_block(int(row.block_number or 0))
    assert status == Status.MINED
    assert (row.status, row.block_hash) == (Status.MINED, "0x" + bytes(old_block["hash"]).hex())
    assert handled == []
    # when: its block is reorganised away (anvil drops its transactions)
    client.web3.provider.make_request("anvil_reorg", [1, []])  # type: ignore[arg-type]
    status_after_reorg = transaction_confirm(transaction_id=str(row.pk))
    # then: waiting for it again, the same signed bytes back in the pool, nobody told
    row.refresh_from_db()
    assert status_after_reorg == Status.BROADCAST
    assert (row.block_number, row.block_hash) == (None, "")
    assert client.transaction_known(row.tx_hash)
    assert handled == []
    # when: mined again, then one block on top
    client.web3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert transaction_confirm(transaction_id=str(row.pk)) == Status.MINED
    client.web3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    final = transaction_confirm(transaction_id=str(row.pk))
    # then: final from the new block's receipt, the handler ran once, one signed version
    row.refresh_from_db()
    receipt = client.get_receipt(row.tx_hash)
    assert receipt is not None
    assert (final, row.status) == (Status.CONFIRMED, Status.CONFIRMED)
    assert (row.block_number, row.block_hash) == (receipt.block_number, receipt.block_hash)
    assert row.block_hash != "0x" + bytes(old_block["hash"]).hex()
    assert handled == [(row.intent_key, Status.CONFIRMED)]
    assert SignedVersion.objects.filter(transaction=row).count() == 1
    assert client.batch_executed(contracts.equity_payout, intent.batch_id)
    assert [client.erc20_balance(contracts.payment_token, h) for h in intent.holders] == intent.amounts


@pytest.mark.django_db
def test_a_transaction_the_reorg_moves_to_another_block_is_final_from_its_new_receipt(
    chain_settings: Settings,
    anvil_factory: Callable[..., LocalService],
    clean_redis: None,
    handled: list[tuple[str, str]],
) -> None:
    # given: mined, one block on top, two confirmations required: not yet final
    node = anvil_factory()
    contracts = deploy_reference_contracts(node.url, holders=2)
    client = ChainClient(node.url)

    def mine() -> None:
        client.web3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    chain_settings.CHAIN_RPC_URL = node.url
    chain_settings.CHAIN_CONFIRMATIONS = 2
    client.web3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    intent = batch_intent(contracts)
    row = enqueue_batch(contracts, intent)
    transaction_submit(transaction_id=str(row.pk))
    mine()
    mine()
    not_deep_enough = transaction_confirm(transaction_id=str(row.pk))
    assert handled == [], "the handler ran from a receipt 1 block deep"
    assert not_deep_enough == Status.MINED
    row.refresh_from_db()
    old_block, old_hash = int(row.block_number or 0), row.block_hash
    raw = SignedVersion.objects.get(transaction=row).raw
    # when: a reorg replaces both blocks and puts the same transaction in the second one
    client.web3.provider.make_request("anvil_reorg", [2, [[raw, 1]]])  # type: ignore[arg-type]
    status = transaction_confirm(transaction_id=str(row.pk))
    moved = ChainTransaction.objects.get(pk=row.pk)
    mine()
    not_yet = transaction_confirm(transaction_id=str(row.pk))
    mine()
    final = transaction_confirm(transaction_id=str(row.pk))
    # then: it followed the transaction into its new block, and became final only two blocks deep there
    row.refresh_from_db()
    assert (status, moved.block_number) == (Status.MINED, old_block + 1)
    assert moved.block_hash not in ("", old_hash)
    assert not_yet == Status.MINED
    assert (final, row.block_number, row.block_hash) == (Status.CONFIRMED, moved.block_number, moved.block_hash)
    assert handled == [(row.intent_key, Status.CONFIRMED)]
    assert [client.erc20_balance(contracts.payment_token, h) for h in intent.holders] == intent.amounts


@pytest.mark.django_db
def test_a_transaction_found_mined_while_still_signed_is_mined_and_followed_by_a_confirm_task(
    chain_settings: Settings,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    clean_redis: None,
    handled: list[tuple[str, str]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # given: signed and stored, then mined by hand before the lane broadcast it (a worker that died
    # right after sending), with one confirmation required and no block on top yet
    chain_settings.CHAIN_CONFIRMATIONS = 1
    row = enqueue_batch(contracts, batch_intent(contracts))
    lane_services.transaction_prepare(transaction_id=str(row.pk))
    chain_client.send_raw_transaction(SignedVersion.objects.get(transaction=row).raw_bytes)
    # when: recovery sends it again, and the node answers that its nonce is used (by our own receipt)
    with django_capture_on_commit_callbacks() as published:
        status = transaction_submit(transaction_id=str(row.pk))
    # then: MINED, not final, and a confirm task follows it (none was enqueued while it was SIGNED)
    assert status == Status.MINED
    assert handled == []
    confirms = [
        (callback.args, callback.keywords)
        for callback in published
        if callback.args and callback.args[0] is confirm_transaction_task
    ]
    assert confirms == [((confirm_transaction_task, str(row.pk)), {"countdown": CONFIRM_DELAY_SECONDS})]
