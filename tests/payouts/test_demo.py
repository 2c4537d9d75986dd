"""The `make run` demo: a synced asset with a few hundred holders and a funded payout contract."""

from __future__ import annotations

import pytest

from chain.client import ChainClient
from chain.localchain import DeployedContracts
from chain.signers import LocalKeySigner
from payouts import gateway
from payouts.demo import DEMO_FUNDING, demo_setup
from payouts.models import Asset, AssetHolder

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def test_demo_setup_creates_a_ready_asset_once(
    chain_client: ChainClient, deployer: LocalKeySigner, contracts: DeployedContracts
) -> None:
    # when run twice
    first = demo_setup(client=chain_client, signer=deployer, payment_token=contracts.payment_token, holders=250)
    second = demo_setup(client=chain_client, signer=deployer, payment_token=contracts.payment_token, holders=250)
    # then one synced asset with 250 holders and a funded payout contract
    assert (first.created, second.created) == (True, False)
    asset = Asset.objects.get()
    assert (asset.sync_status, asset.holders_count) == ("SYNCED", 250)
    assert AssetHolder.objects.filter(asset=asset, balance__gt=0).count() == 250
    payout = gateway.checksum(asset.payout_contract_address)
    assert chain_client.erc20_balance(contracts.payment_token, payout) == DEMO_FUNDING
