"""Real contract activity for the listener suite: mints, transfers of payout batches, dividends."""

from __future__ import annotations

import hashlib

from chain import abi
from chain.client import ChainClient, Receipt
from chain.deploy import call_contract, send_and_wait
from chain.localchain import DeployedContracts, holder_addresses
from chain.signers import LocalKeySigner


def _id(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def pay_batch(
    client: ChainClient, deployer: LocalKeySigner, payout: str, *, distribution: str, batch: str, holders: list[str]
) -> Receipt:
    """One executeBatch paying each holder 1 base unit: a HolderPaid per holder, PayoutCompleted, maybe more."""
    data = abi.encode_execute_batch(
        _id(distribution), _id(batch), len(holders), holders, [1] * len(holders), distribution_total=len(holders)
    )
    return send_and_wait(client, deployer, to=payout, data=data)


def mint(client: ChainClient, deployer: LocalKeySigner, token: str, holder: str, amount: int) -> Receipt:
    """Transfer + HolderBalanceUpdated on the asset token."""
    return call_contract(client, deployer, "AssetToken", token, "mint", [holder, amount])


def activity(client: ChainClient, deployer: LocalKeySigner, contracts: DeployedContracts, *, round_: int) -> None:
    """Mints on the equity token and a 45-holder batch on its payout contract (47 logs in one transaction)."""
    holders = holder_addresses(45)
    for holder in holders[round_ * 3 : round_ * 3 + 3]:
        mint(client, deployer, contracts.equity_token, holder, 10**18)
    pay_batch(client, deployer, contracts.equity_payout, distribution=f"d{round_}", batch=f"b{round_}", holders=holders)
