"""Fixtures of the payouts suite."""

from __future__ import annotations

import pytest

from chain.client import ChainClient
from chain.localchain import DeployedContracts
from chain.signers import LocalKeySigner
from payouts import services
from payouts.models import Asset
from tests.payouts.chainkit import deploy_asset


@pytest.fixture
def funded_asset(chain_client: ChainClient, deployer: LocalKeySigner, contracts: DeployedContracts) -> Asset:
    """A real asset on anvil, imported (not synced), whose payout contract holds 1,000,000.000000:
    starting a distribution reads that balance from the chain."""
    demo = deploy_asset(
        chain_client, deployer, payment_token=contracts.payment_token, balances=[1], funding=10**12, salt="funded"
    )
    return services.asset_import(token_address=demo.token, payout_contract_address=demo.payout)
