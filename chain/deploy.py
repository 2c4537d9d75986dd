"""Deploy contracts and send one-off set-up transactions, waiting for each receipt.

For set-up only (local chain, tests, an operator deploying a payout contract): these calls take the
nonce from the chain and wait for the receipt. Payout batches go through the submission lane
(`chain.services`) instead, which is crash-safe and pipelined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_utils.address import to_checksum_address

from chain import abi
from chain.client import ChainClient, Receipt
from chain.errors import ChainError, TransactionReverted
from chain.signers import Signer

GAS_HEADROOM_PERCENT = 20


def build_transaction(
    client: ChainClient, signer: Signer, *, to: str | None, data: bytes, value: int = 0, nonce: int | None = None
) -> dict[str, Any]:
    """A complete EIP-1559 transaction dict: estimated gas (+20%), current fees, next pending nonce."""
    gas = client.estimate_gas(sender=signer.address, to=to, data=data, value=value)
    fees = client.fees()
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": client.chain_id(),
        "nonce": client.nonce(signer.address) if nonce is None else nonce,
        "gas": gas * (100 + GAS_HEADROOM_PERCENT) // 100,
        "maxFeePerGas": fees.max_fee_per_gas,
        "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        "value": value,
        "data": data,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return tx


def send_and_wait(
    client: ChainClient, signer: Signer, *, to: str | None, data: bytes, value: int = 0, timeout: float = 30
) -> Receipt:
    """Sign, send and wait; raises `TransactionReverted` if the transaction failed on chain."""
    signed = signer.sign_transaction(build_transaction(client, signer, to=to, data=data, value=value))
    client.send_raw_transaction(signed.raw)
    receipt = client.wait_for_receipt(signed.tx_hash, timeout=timeout)
    if not receipt.succeeded:
        raise TransactionReverted(f"transaction {signed.tx_hash} failed on chain")
    return receipt


def call_contract(
    client: ChainClient, signer: Signer, contract: str, address: str, function: str, args: Sequence[Any] = ()
) -> Receipt:
    return send_and_wait(client, signer, to=address, data=abi.encode_call(contract, function, args))


def deploy_contract(client: ChainClient, signer: Signer, contract: str, args: Sequence[Any] = ()) -> str:
    """Deploy one of our artifacts; returns its checksummed address."""
    receipt = send_and_wait(client, signer, to=None, data=abi.encode_constructor(contract, args))
    address = client.contract_address(receipt.tx_hash)
    if address is None:
        raise ChainError(f"deployment {receipt.tx_hash} created no contract")
    return address


def deploy_payout_contract(
    client: ChainClient, signer: Signer, asset_token: str, payment_token: str, *, hold_lane: bool = True
) -> str:
    """Deploy a PayoutContract for an asset (the signer becomes its admin, with PAYOUT_ROLE).

    When the signer also owns the asset token, the asset is linked to it (`setPayoutContract`) so
    that bond cash-outs can redeem; otherwise the asset's owner must do that. With `hold_lane`
    (needs Django and Redis) the signer's submission lane is held meanwhile, so the lane and the
    deployment never pick the same nonce.
    """
    if not hold_lane:
        return _deploy_payout_contract(client, signer, asset_token, payment_token)
    # Imported here: `make run` deploys the local chain with this module before Django is set up,
    # and the lane imports models.
    from chain.lane.base import sender_lock

    with sender_lock(client.chain_id(), signer.address):
        return _deploy_payout_contract(client, signer, asset_token, payment_token)


def _deploy_payout_contract(client: ChainClient, signer: Signer, asset_token: str, payment_token: str) -> str:
    address = deploy_contract(
        client,
        signer,
        "PayoutContract",
        [to_checksum_address(asset_token), to_checksum_address(payment_token), signer.address],
    )
    (owner,) = abi.decode_result(
        "AssetToken", "owner", client.call(to=asset_token, data=abi.encode_call("AssetToken", "owner", []))
    )
    if to_checksum_address(owner) == signer.address:
        call_contract(client, signer, "AssetToken", asset_token, "setPayoutContract", [address])
    return address
