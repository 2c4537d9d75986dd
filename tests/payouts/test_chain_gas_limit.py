"""A batch that would not fit in a block is planned smaller, and every holder is still paid once."""

from __future__ import annotations

import pytest
from celery.worker import WorkController
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from payouts import services
from payouts.models import BatchPayout, Distribution
from tests.fixtures.chain import AnvilNode
from tests.fixtures.payouts import ImportedAssetFactory
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

ANVIL_DEFAULT_BLOCK_GAS_LIMIT = 30_000_000
LOW_BLOCK_GAS_LIMIT = 2_500_000  # far below what a batch of 100 holders needs


def test_batches_are_lowered_to_fit_the_block_gas_limit(
    celery_worker: WorkController,
    chain_settings: Settings,
    anvil: AnvilNode,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given 130 holders, the default batch size of 100, and an imported asset
    chain_settings.PAYOUT_BATCH_SIZE = 100
    demo, asset = imported_asset_factory(balances=[1] * 130, funding=10**9, salt="gas", sync="worker")
    # and blocks that cannot hold a batch of 100 payments
    anvil.rpc("anvil_setBlockGasLimit", hex(LOW_BLOCK_GAS_LIMIT))
    anvil.rpc("evm_mine")  # the next block carries the new limit
    try:
        assert chain_client.block_gas_limit() == LOW_BLOCK_GAS_LIMIT
        # when a FIXED payout of 130,000 base units runs
        distribution = services.distribution_create(
            asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=130_000, concept="gas"
        )
        done: Distribution = wait_for(
            lambda: Distribution.objects.filter(
                pk=distribution.pk, status__in=[Distribution.Status.COMPLETED, Distribution.Status.FAILED]
            ).first(),
            timeout=120,
            what="distribution to finish",
        )
    finally:
        anvil.rpc("anvil_setBlockGasLimit", hex(ANVIL_DEFAULT_BLOCK_GAS_LIMIT))
        anvil.rpc("evm_mine")
    # then it was planned in smaller batches that each fit a block, and every holder got 1,000 once
    assert done.status == Distribution.Status.COMPLETED, done.error
    sizes = list(
        BatchPayout.objects.filter(distribution=done).order_by("number").values_list("holders_count", flat=True)
    )
    assert sum(sizes) == 130
    assert max(sizes) < 100
    assert len(sizes) >= 3
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [1_000] * 130
