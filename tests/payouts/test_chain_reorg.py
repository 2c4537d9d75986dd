"""A reorg never reports a holder paid: a batch whose block leaves the canonical chain before it is
CHAIN_CONFIRMATIONS deep is not applied from its old receipt; once mined again the payout
completes, everyone paid exactly once. anvil started for the test, mined by hand, then reorganised
with `anvil_reorg`; a real Celery worker and the chain sweeper at its beat cadence."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from pytest_django.fixtures import Settings

from chain.models import ChainTransaction
from config.localservices import LocalService
from payouts import gateway, services
from payouts.models import Distribution, HolderPayment
from tests.fixtures.waiting import wait_for
from tests.fixtures.workers import running_chain_sweeper, running_worker
from tests.payouts.chainkit import import_and_wait_synced, wait_finished
from tests.payouts.chainrun import (
    assert_everyone_paid_once,
    batch_transactions,
    own_chain_with_asset,
)

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

WATCH_SECONDS = 5  # how long nobody may be reported paid while the batches are not final


def _batch_rows() -> list[ChainTransaction]:
    return list(ChainTransaction.objects.filter(purpose=gateway.PAYOUT_BATCH_PURPOSE).order_by("nonce"))


def test_a_batch_reorged_out_before_it_is_final_is_not_reported_paid_and_the_payout_completes_once(
    chain_settings: Settings, clean_redis: None, anvil_factory: Callable[..., LocalService]
) -> None:
    # given: 12 holders in 3 batches, one confirmation required, a chain that mines when told
    own = own_chain_with_asset(anvil_factory, holders=12, salt="reorg")
    chain_settings.CHAIN_RPC_URL = own.node.url
    chain_settings.CHAIN_CONFIRMATIONS = 1
    chain_settings.PAYOUT_BATCH_SIZE = 4
    with running_worker(), running_chain_sweeper():
        asset = import_and_wait_synced(own.demo)
        own.rpc("evm_setAutomine", False)
        distribution = services.distribution_create(
            asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=12_000_000, concept="reorg"
        )
        wait_for(lambda: len(_batch_rows()) == 3 and all(row.tx_hash for row in _batch_rows()), what="3 batches sent")
        wait_for(lambda: all(own.client.transaction_known(row.tx_hash) for row in _batch_rows()), what="in the pool")
        # when: all three are mined in one block and the lane reads their receipts
        own.rpc("evm_mine")
        mined_block = own.client.get_receipt(_batch_rows()[0].tx_hash)
        assert mined_block is not None
        wait_for(lambda: all(row.block_number for row in _batch_rows()), what="the lane to see the receipts")
        # then: nobody is reported paid while that block can still be reorganised away
        deadline = time.monotonic() + WATCH_SECONDS
        while time.monotonic() < deadline:
            reported = HolderPayment.objects.filter(distribution=distribution, status="SUCCESS").count()
            assert reported == 0, f"{reported} holders reported paid from a receipt 0 blocks deep"
            time.sleep(0.2)
        # when: that block leaves the canonical chain (anvil drops its transactions), then blocks flow
        own.rpc("anvil_reorg", 1, [])
        assert all(own.client.get_receipt(row.tx_hash) is None for row in _batch_rows())
        own.rpc("evm_setIntervalMining", 1)
        done = wait_finished(distribution.pk, timeout=90)
    # then: completed from the new receipts, everyone paid exactly once, nothing signed twice
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert_everyone_paid_once(own, done)
    rows = batch_transactions(done)
    assert [row.status for row in rows] == [ChainTransaction.Status.CONFIRMED] * 3
    for row in rows:
        receipt = own.client.get_receipt(row.tx_hash)
        assert receipt is not None
        assert row.block_hash == receipt.block_hash != mined_block.block_hash
