"""Demo data for `make run` (local chain only): an equity token with a few hundred holders and a
funded payout contract, imported and synced, so an operator can create and execute a distribution
from the admin right away.

Idempotent: an existing demo asset (by name) is left alone. Never used in production.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_account import Account

from chain.abi import encode_call
from chain.client import ChainClient
from chain.deploy import deploy_contract, deploy_payout_contract
from chain.signers import Signer
from payouts import services
from payouts.models import Asset

logger = logging.getLogger(__name__)

DEMO_NAME = "Demo Equity"
DEMO_HOLDERS = 300
DEMO_FUNDING = 1_000_000 * 10**6  # 1,000,000 units of a 6-decimal payment token


@dataclass(frozen=True)
class DemoResult:
    asset: Asset
    created: bool


def demo_holder(index: int) -> str:
    """Deterministic demo holder addresses (keys from a fixed local seed: never real money)."""
    return str(Account.from_key(f"payouts-demo-{index}".encode().rjust(32, b"\0")).address)


def send_all(client: ChainClient, signer: Signer, calls: list[tuple[str, bytes]], *, gas: int = 400_000) -> None:
    """Send set-up transactions back to back (consecutive nonces), then wait for the last one."""
    nonce = client.nonce(signer.address)
    fees = client.fees()
    chain_id = client.chain_id()
    last = ""
    for offset, (to, data) in enumerate(calls):
        signed = signer.sign_transaction(
            {
                "type": 2,
                "chainId": chain_id,
                "nonce": nonce + offset,
                "gas": gas,
                "maxFeePerGas": fees.max_fee_per_gas,
                "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
                "value": 0,
                "data": data,
                "to": to,
            }
        )
        client.send_raw_transaction(signed.raw)
        last = signed.tx_hash
    if last and not client.wait_for_receipt(last, timeout=60).succeeded:
        raise RuntimeError(f"set-up transaction {last} failed")


def demo_setup(*, client: ChainClient, signer: Signer, payment_token: str, holders: int = DEMO_HOLDERS) -> DemoResult:
    existing = Asset.objects.filter(name=DEMO_NAME).first()
    if existing is not None:
        return DemoResult(asset=existing, created=False)
    token = deploy_contract(client, signer, "AssetToken", [DEMO_NAME, "DEMO", 0, 0, 0, signer.address])
    mints = [(token, encode_call("AssetToken", "mint", [demo_holder(i), 10 + (i * 37) % 990])) for i in range(holders)]
    send_all(client, signer, mints)
    payout = deploy_payout_contract(client, signer, token, payment_token)
    send_all(client, signer, [(payment_token, encode_call("PaymentToken", "mint", [payout, DEMO_FUNDING]))])
    asset = services.asset_import(token_address=token, payout_contract_address=payout, name=DEMO_NAME)
    asset = services.asset_sync(asset_id=asset.pk)
    logger.info("demo asset ready asset_id=%s holders=%s payout=%s", asset.pk, asset.holders_count, payout)
    return DemoResult(asset=asset, created=True)
