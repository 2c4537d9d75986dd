"""A payout batch whose transaction an operator cancelled (the node refused it for ever, halting the
lane) fails its holders like any failed transaction, and a retry pays each of them exactly once.
Real anvil, PostgreSQL, Redis and a Celery worker."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from chain.errors import ChainError
from chain.lane import services as lane_services
from chain.models import ChainTransaction
from chain.services import transaction_confirm, transaction_submit
from payouts import services
from payouts.models import BatchPayout, Distribution, HolderPayment
from tests.fixtures.payouts import ImportedAssetFactory
from tests.fixtures.waiting import wait_for
from tests.fixtures.workers import running_worker
from tests.payouts.chainkit import wait_finished

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

LOWERED_GAS_LIMIT = 300_000  # below what a five-holder payout batch needs


def test_a_cancelled_payout_batch_fails_its_holders_and_a_retry_pays_each_of_them_once(
    clean_redis: None,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    block_gas_limit: Callable[[int], None],
) -> None:
    # given a distribution to five holders whose batch transaction was signed, then refused for ever
    demo, asset = imported_asset_factory(balances=[1, 2, 3, 4, 5], funding=10**9, salt="cx", sync="here")
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=15_000
    )
    services.distribution_plan(distribution_id=distribution.pk)
    assert services.distribution_submit_batches(distribution_id=distribution.pk) == 1
    batch = BatchPayout.objects.get(distribution=distribution)
    transaction_id = str(batch.chain_transaction_id)
    lane_services.transaction_prepare(transaction_id=transaction_id)
    block_gas_limit(LOWERED_GAS_LIMIT)
    with pytest.raises(ChainError, match="gas"):
        transaction_submit(transaction_id=transaction_id)
    # when an operator cancels it and the cancel is mined
    lane_services.transaction_cancel(transaction_id=transaction_id)
    wait_for(
        lambda: transaction_confirm(transaction_id=transaction_id) in ChainTransaction.Status.final(), what="cancel"
    )
    # then the transaction is CANCELLED, the batch and the distribution FAILED, nobody paid
    assert ChainTransaction.objects.get(pk=transaction_id).status == ChainTransaction.Status.CANCELLED
    failed = Distribution.objects.get(pk=distribution.pk)
    assert (failed.status, failed.paid_count, failed.failed_count) == (Distribution.Status.FAILED, 0, 5)
    batch.refresh_from_db()
    assert batch.status == BatchPayout.Status.FAILED
    assert batch.error.startswith("transaction cancelled: ")
    payments = HolderPayment.objects.filter(distribution=distribution)
    assert {(p.status, p.next_retry_at is not None) for p in payments} == {(HolderPayment.Status.FAILED, True)}
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [0] * 5
    # when the node takes such batches again and the operator retries
    block_gas_limit(30_000_000)
    services.distribution_retry(distribution_id=distribution.pk)
    with running_worker():
        done = wait_finished(distribution.pk)
    # then every holder is paid their share, once
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [1000, 2000, 3000, 4000, 5000]
    assert set(HolderPayment.objects.filter(distribution=done).values_list("status", "retry_count")) == {("SUCCESS", 1)}
