"""Contract ABIs and bytecode from the committed artifacts, call encoding and log decoding.

Everything here is pure (no I/O beyond reading the artifacts once): encoders return calldata bytes
that the submission lane signs and sends; `decode_log` turns a raw log (from JSON-RPC or the
Hedera Mirror Node) into a `DecodedEvent` using every ABI in `chain/contracts/build/`.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from chain.contracts.compile import BUILD_DIR
from chain.errors import UndecodableLog
from chain.events import DecodedEvent

ASSET_TYPES = ("EQUITY", "BOND_VARIABLE_RATE", "BOND_FIXED_RATE", "BOND_KPI_LINKED_RATE", "BOND_SPT_RATE")


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes


@functools.cache
def artifact(name: str) -> Artifact:
    """The committed artifact `chain/contracts/build/<name>.json`."""
    data = json.loads((BUILD_DIR / f"{name}.json").read_text())
    return Artifact(name=name, abi=data["abi"], bytecode=bytes(HexBytes(data["bytecode"])))


def artifact_names() -> list[str]:
    return sorted(path.stem for path in BUILD_DIR.glob("*.json"))


def _canonical_type(entry: Mapping[str, Any]) -> str:
    kind = str(entry["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(component) for component in entry["components"])
        return f"({inner}){kind[5:]}"
    return kind


def _signature(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(_canonical_type(i) for i in entry['inputs'])})"


def _function(contract: str, function: str) -> dict[str, Any]:
    for entry in artifact(contract).abi:
        if entry.get("type") == "function" and entry["name"] == function:
            return entry
    raise KeyError(f"{contract} has no function {function}")


def encode_call(contract: str, function: str, args: Sequence[Any]) -> bytes:
    """Calldata for `contract.function(*args)` (selector + ABI-encoded arguments)."""
    entry = _function(contract, function)
    types = [_canonical_type(i) for i in entry["inputs"]]
    return keccak(text=_signature(entry))[:4] + abi_encode(types, list(args))


def decode_result(contract: str, function: str, data: bytes) -> tuple[Any, ...]:
    """Decoded return values (addresses checksummed)."""
    entry = _function(contract, function)
    types = [_canonical_type(o) for o in entry["outputs"]]
    return tuple(_normalise(value, type_name) for value, type_name in zip(abi_decode(types, data), types, strict=True))


def encode_constructor(contract: str, args: Sequence[Any]) -> bytes:
    """Deployment data: bytecode followed by the ABI-encoded constructor arguments."""
    found = artifact(contract)
    constructor = next((e for e in found.abi if e.get("type") == "constructor"), None)
    if constructor is None:
        return found.bytecode
    return found.bytecode + abi_encode([_canonical_type(i) for i in constructor["inputs"]], list(args))


def _check_ids(*ids: bytes) -> None:
    for value in ids:
        if len(value) != 32:
            raise ValueError("distribution and batch ids are 32 bytes")


def _payout_args(
    distribution_id: bytes,
    batch_id: bytes,
    distribution_total: int,
    holders_count: int,
    holders: list[str],
    amounts: list[int],
) -> list[Any]:
    _check_ids(distribution_id, batch_id)
    if len(holders) != len(amounts):
        raise ValueError("holders and amounts differ in length")
    if any(amount < 0 for amount in amounts):
        raise ValueError("amounts are non-negative integers")
    if distribution_total <= 0:
        raise ValueError("a distribution's total is a positive integer")
    return [
        distribution_id,
        batch_id,
        distribution_total,
        holders_count,
        [to_checksum_address(h) for h in holders],
        amounts,
    ]


def encode_execute_batch(
    distribution_id: bytes,
    batch_id: bytes,
    holders_count: int,
    holders: list[str],
    amounts: list[int],
    *,
    distribution_total: int,
) -> bytes:
    """`executeBatch`: the first batch of a distribution registers `distribution_total` on chain; the
    contract never pays more than that under the distribution's id."""
    args = _payout_args(distribution_id, batch_id, distribution_total, holders_count, holders, amounts)
    return encode_call("PayoutContract", "executeBatch", args)


def encode_execute_bond_cash_out(
    distribution_id: bytes,
    batch_id: bytes,
    holders_count: int,
    holders: list[str],
    amounts: list[int],
    *,
    distribution_total: int,
    token_amounts: list[int],
) -> bytes:
    """`executeBondCashOut`: pays `amounts[i]` for exactly `token_amounts[i]` bonds burned."""
    if len(token_amounts) != len(holders):
        raise ValueError("holders and token amounts differ in length")
    args = _payout_args(distribution_id, batch_id, distribution_total, holders_count, holders, amounts)
    return encode_call("PayoutContract", "executeBondCashOut", [*args, token_amounts])


def encode_withdraw(to: str, amount: int) -> bytes:
    return encode_call("PayoutContract", "withdraw", [to_checksum_address(to), amount])


def encode_pause() -> bytes:
    return encode_call("PayoutContract", "pause", [])


def encode_unpause() -> bytes:
    return encode_call("PayoutContract", "unpause", [])


# --- log decoding ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _EventAbi:
    name: str
    inputs: tuple[tuple[str, str, bool], ...]  # (name, type, indexed)

    @property
    def indexed_count(self) -> int:
        return sum(1 for _, _, indexed in self.inputs if indexed)


@functools.cache
def _events_by_topic() -> dict[bytes, list[_EventAbi]]:
    found: dict[bytes, list[_EventAbi]] = {}
    for name in artifact_names():
        for entry in artifact(name).abi:
            if entry.get("type") != "event" or entry.get("anonymous"):
                continue
            event = _EventAbi(
                name=entry["name"],
                inputs=tuple((i["name"], _canonical_type(i), bool(i["indexed"])) for i in entry["inputs"]),
            )
            candidates = found.setdefault(keccak(text=_signature(entry)), [])
            if event not in candidates:
                candidates.append(event)
    return found


def event_topic(event_name: str) -> str:
    """`0x`-hex topic0 of an event in our ABIs (for log filters)."""
    for topic, events in _events_by_topic().items():
        if any(event.name == event_name for event in events):
            return "0x" + topic.hex()
    raise KeyError(event_name)


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes(HexBytes(str(value)))


def _normalise(value: Any, type_name: str) -> Any:
    if type_name == "address":
        return to_checksum_address(value)
    if type_name.endswith("[]") and isinstance(value, list | tuple):
        return [_normalise(v, type_name[:-2]) for v in value]
    return value


def decode_log(log: Mapping[str, Any], block_timestamp: datetime.datetime | None = None) -> DecodedEvent:
    """Decode one raw log (`address`, `topics`, `data`, `transactionHash`/`transaction_hash`,
    `logIndex`/`index`, `blockNumber`/`block_number`). Raises `UndecodableLog`."""
    try:
        topics = [_to_bytes(topic) for topic in log.get("topics") or []]
        data = _to_bytes(log.get("data") or b"")
        tx_hash = "0x" + _to_bytes(log.get("transactionHash", log.get("transaction_hash"))).hex()
        log_index = int(log.get("logIndex", log.get("index", 0)))
        block_number = int(log.get("blockNumber", log.get("block_number", 0)))
        address = to_checksum_address(str(log["address"]) if not isinstance(log["address"], bytes) else log["address"])
    except (KeyError, ValueError, TypeError) as exc:
        raise UndecodableLog(f"malformed log: {type(exc).__name__}") from exc
    if not topics:
        raise UndecodableLog("anonymous log (no topics)")
    last_error = "no matching event"
    for event in _events_by_topic().get(topics[0], []):
        if event.indexed_count != len(topics) - 1:
            last_error = f"{event.name}: topic count differs"
            continue
        try:
            indexed = iter(topics[1:])
            args: dict[str, Any] = {}
            data_inputs = [(n, t) for n, t, is_indexed in event.inputs if not is_indexed]
            data_values = abi_decode([t for _, t in data_inputs], data) if data_inputs else ()
            if not data_inputs and data:
                raise ValueError("unexpected data")
            data_by_name = dict(zip([n for n, _ in data_inputs], data_values, strict=True))
            for input_name, type_name, is_indexed in event.inputs:
                if is_indexed:
                    (value,) = abi_decode([type_name], next(indexed))
                else:
                    value = data_by_name[input_name]
                args[input_name] = _normalise(value, type_name)
        except Exception as exc:  # eth_abi raises several types for bad data
            last_error = f"{event.name}: {type(exc).__name__}"
            continue
        return DecodedEvent(
            event_name=event.name,
            args=args,
            contract_address=address,
            tx_hash=tx_hash,
            log_index=log_index,
            block_number=block_number,
            block_timestamp=block_timestamp,
        )
    raise UndecodableLog(last_error)
