"""Decode a fetched log for a listener: only events of the listener's own ABI, canonical data only.

The decoding itself is `chain.abi.decode_log` (every ABI in `chain/contracts/build/`). The listener
adds two guards: the event must belong to the contract the listener watches (`abi_name`), so a
log that merely looks like another contract's event is not dispatched; and the data must be the
canonical ABI encoding (a log with trailing or stray bytes is forged or corrupt). Anything else
raises `UndecodableLog`, and the listener stores the log as UNDECODABLE and goes on.
"""

from __future__ import annotations

import functools
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_utils.crypto import keccak

from chain import abi
from chain.errors import UndecodableLog
from chain.events import DecodedEvent
from chain.listener.types import FetchedLog


def _canonical_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(component) for component in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@functools.cache
def listener_events(abi_name: str) -> dict[str, list[dict[str, Any]]]:
    """topic0 (0x lowercase hex) -> the events of artifact `abi_name` with that topic."""
    try:
        entries = abi.artifact(abi_name).abi
    except FileNotFoundError as exc:
        raise UndecodableLog(f"no ABI artifact named {abi_name}") from exc
    events: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry.get("type") != "event" or entry.get("anonymous"):
            continue
        signature = f"{entry['name']}({','.join(_canonical_type(p) for p in entry['inputs'])})"
        events.setdefault("0x" + keccak(text=signature).hex(), []).append(entry)
    return events


def decode_log(abi_name: str, log: FetchedLog, *, contract_address: str) -> DecodedEvent:
    if not log.topics:
        raise UndecodableLog("log has no topics")
    candidates = listener_events(abi_name).get(str(log.topics[0]).lower(), [])
    if not candidates:
        raise UndecodableLog(f"topic {str(log.topics[0])[:18]}... is no event of {abi_name}")
    decoded = abi.decode_log(
        {
            "address": contract_address,
            "topics": list(log.topics),
            "data": log.data,
            "transactionHash": log.tx_hash,
            "logIndex": log.log_index,
            "blockNumber": log.block_number,
        },
        block_timestamp=log.block_timestamp,
    )
    entry = next((e for e in candidates if e["name"] == decoded.event_name), None)
    if entry is None:
        raise UndecodableLog(f"{decoded.event_name} is no event of {abi_name}")
    plain = [p for p in entry["inputs"] if not p.get("indexed")]
    try:
        canonical = abi_encode([_canonical_type(p) for p in plain], [decoded.args[p["name"]] for p in plain])
    except (EncodingError, KeyError, TypeError) as exc:
        raise UndecodableLog(f"{decoded.event_name}: arguments do not re-encode ({type(exc).__name__})") from exc
    if canonical != bytes.fromhex(log.data.removeprefix("0x")):
        raise UndecodableLog(f"{decoded.event_name}: data is not the canonical encoding (stray or trailing bytes)")
    return decoded


def args_to_json(value: Any) -> Any:
    """Decoded args as JSON: integers as decimal strings (uint256 does not fit a JSON number), bytes as 0x hex."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {key: args_to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [args_to_json(item) for item in value]
    return value
