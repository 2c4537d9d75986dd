"""Test helpers for payouts on a real anvil chain: deploy a fresh asset with N holders, fund, wait."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account

from chain.abi import encode_call
from chain.client import ChainClient
from chain.deploy import deploy_contract, deploy_payout_contract
from chain.signers import Signer
from payouts import services
from payouts.demo import send_all
from payouts.models import Asset, Distribution
from tests.fixtures.waiting import wait_for


@dataclass(frozen=True)
class DemoAsset:
    token: str
    payment_token: str
    payout: str
    holders: tuple[str, ...]
    balances: tuple[int, ...]


def holder_address(i: int, salt: str = "t") -> str:
    key = f"payouts-{salt}-{i}".encode().rjust(32, b"\0")
    return str(Account.from_key(key).address)


def send_many(client: ChainClient, signer: Signer, calls: list[tuple[str, bytes]]) -> None:
    """Send transactions back to back with consecutive nonces, then wait for the last receipt."""
    send_all(client, signer, calls)


def deploy_asset(
    client: ChainClient,
    signer: Signer,
    *,
    payment_token: str,
    balances: list[int],
    funding: int,
    decimals: int = 0,
    salt: str = "t",
    asset_type: int = 0,
    maturity: int = 0,
) -> DemoAsset:
    token = deploy_contract(
        client,
        signer,
        "AssetToken",
        [f"Test {salt}", f"T{salt[:4].upper()}", decimals, asset_type, maturity, signer.address],
    )
    holders = tuple(holder_address(i, salt) for i in range(len(balances)))
    send_many(
        client,
        signer,
        [(token, encode_call("AssetToken", "mint", [h, b])) for h, b in zip(holders, balances, strict=True)],
    )
    payout = deploy_payout_contract(client, signer, token, payment_token)
    if funding:
        fund(client, signer, payment_token=payment_token, payout=payout, amount=funding)
    return DemoAsset(token=token, payment_token=payment_token, payout=payout, holders=holders, balances=tuple(balances))


def fund(client: ChainClient, signer: Signer, *, payment_token: str, payout: str, amount: int) -> None:
    send_many(client, signer, [(payment_token, encode_call("PaymentToken", "mint", [payout, amount]))])


def import_and_sync(demo: DemoAsset) -> Asset:
    """Import the asset and sync it on the test thread (no worker needed)."""
    asset = services.asset_import(token_address=demo.token, payout_contract_address=demo.payout)
    return services.asset_sync(asset_id=asset.pk)


def import_and_wait_synced(demo: DemoAsset) -> Asset:
    """Import the asset and wait for a running worker to sync it; it must end SYNCED."""
    asset = services.asset_import(token_address=demo.token, payout_contract_address=demo.payout)
    synced: Asset = wait_for(
        lambda: Asset.objects.filter(pk=asset.pk).exclude(sync_status=Asset.SyncStatus.SYNCING).first(),
        what="asset sync",
    )
    assert synced.sync_status == Asset.SyncStatus.SYNCED, synced.sync_error
    return synced


def wait_finished(distribution_id: Any, timeout: float = 120) -> Distribution:
    """Wait for a running distribution to end COMPLETED or FAILED, and return it."""
    finished: Distribution = wait_for(
        lambda: Distribution.objects.filter(
            pk=distribution_id, status__in=(Distribution.Status.COMPLETED, Distribution.Status.FAILED)
        ).first(),
        timeout=timeout,
        what="distribution to finish",
    )
    return finished
