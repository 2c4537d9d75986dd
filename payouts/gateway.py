"""Everything payouts asks of the `chain` package, in one place (see /work/chain-interface.md).

Services call these helpers instead of importing `chain` all over the app. Chain ids are derived
here: a distribution's on-chain id is its UUID left-padded to bytes32; a batch's on-chain id is
keccak256 of (distribution id, batch id, attempt), so a retry is a NEW on-chain batch while the
contract still refuses to pay any holder twice for the same distribution.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence

from django.conf import settings
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain import abi
from chain.abi import decode_result, encode_call, encode_execute_batch, encode_execute_bond_cash_out
from chain.client import ChainClient
from chain.services import ResolvedAddress, address_resolve

PAYOUT_BATCH_PURPOSE = "payout_batch"
PAYOUT_PAUSE_PURPOSE = "payout_pause"
PAYOUT_WITHDRAW_PURPOSE = "payout_withdraw"


def chain_distribution_id(distribution_id: uuid.UUID) -> str:
    return "0x" + distribution_id.bytes.rjust(32, b"\0").hex()


def chain_batch_id(*, chain_distribution_id: str, batch_id: int, attempt: int) -> str:
    return "0x" + keccak(text=f"{chain_distribution_id}:{batch_id}:{attempt}").hex()


def batch_intent_key(batch_id: int, attempt: int) -> str:
    return f"payout-batch:{batch_id}:{attempt}"


def parse_batch_intent_key(intent_key: str) -> tuple[int, int] | None:
    parts = intent_key.split(":")
    if len(parts) != 3 or parts[0] != "payout-batch" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return int(parts[1]), int(parts[2])


def pause_intent_key(asset_id: uuid.UUID, generation: int) -> str:
    return f"payout-pause:{asset_id}:{generation}"


def parse_pause_intent_key(intent_key: str) -> tuple[uuid.UUID, int] | None:
    parts = intent_key.split(":")
    if len(parts) != 3 or parts[0] != "payout-pause" or not parts[2].isdigit():
        return None
    try:
        return uuid.UUID(parts[1]), int(parts[2])
    except ValueError:
        return None


def to_bytes32(hex_id: str) -> bytes:
    return bytes.fromhex(hex_id.removeprefix("0x"))


def checksum(address: str) -> str:
    return str(to_checksum_address(address))


def normalize(address: str) -> str:
    """Addresses are stored lowercase so that the database and Python order them identically."""
    return checksum(address).lower()


def resolve_address(*, field: str, value: str) -> ResolvedAddress:
    """An address input (a 0x address or a Hedera id such as `0.0.4431`) as the stored, lowercase
    EVM address and its Hedera id where known. Refusals name `field`; network I/O (the Mirror Node):
    call it outside a database transaction."""
    resolved = address_resolve(field=field, value=value)
    return ResolvedAddress(normalize(resolved.address), resolved.hedera_id)


@functools.cache
def _client_for(rpc_url: str) -> ChainClient:

    return ChainClient.from_settings()


def client() -> ChainClient:

    return _client_for(settings.CHAIN_RPC_URL)


def encode_batch(
    *,
    bond_cash_out: bool,
    distribution_hex: str,
    batch_hex: str,
    distribution_total: int,
    holders_count: int,
    holders: Sequence[str],
    amounts: Sequence[int],
    token_amounts: Sequence[int] = (),
) -> bytes:
    """A batch call; `token_amounts` (bond cash-outs only) are the bonds burned for each payment."""

    args = (to_bytes32(distribution_hex), to_bytes32(batch_hex), holders_count, [checksum(a) for a in holders])
    if bond_cash_out:
        return encode_execute_bond_cash_out(
            *args, list(amounts), distribution_total=distribution_total, token_amounts=list(token_amounts)
        )
    return encode_execute_batch(*args, list(amounts), distribution_total=distribution_total)


def encode_withdraw(to: str, amount: int) -> bytes:
    return abi.encode_withdraw(checksum(to), amount)


def encode_pause(paused: bool) -> bytes:
    return abi.encode_pause() if paused else abi.encode_unpause()


def erc20_decimals(token: str) -> int:
    """`decimals()` of a plain ERC-20 (the payment token has no asset details)."""

    data = client().call(to=checksum(token), data=encode_call("PaymentToken", "decimals", []))
    return int(decode_result("PaymentToken", "decimals", data)[0])


def erc20_symbol(token: str) -> str:
    """`symbol()` of a plain ERC-20 (shown next to amounts in the admin and the exports)."""

    data = client().call(to=checksum(token), data=encode_call("PaymentToken", "symbol", []))
    return str(decode_result("PaymentToken", "symbol", data)[0])[:32]
