"""Decode a fetched log with the listener's contract ABI (`chain/contracts/build/<abi_name>.json`).

Strict on purpose: an unknown topic, a wrong number of topics, data that is too short, too long or
badly padded all raise `UndecodableLog`; the listener stores such a log as UNDECODABLE and goes on.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import eth_abi
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from chain.events import DecodedEvent
from chain.listener.types import FetchedLog

BUILD_DIR = Path(__file__).resolve().parent.parent / "contracts" / "build"


class UndecodableLog(Exception):
    """The log does not match any event of the ABI."""


def _canonical_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(component) for component in param["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


@functools.cache
def event_abis(abi_name: str) -> dict[str, dict[str, Any]]:
    """topic0 (0x hex) -> event ABI entry, for every non-anonymous event of the artifact."""
    path = BUILD_DIR / f"{abi_name}.json"
    if not path.is_file():
        raise UndecodableLog(f"no ABI artifact named {abi_name}")
    abi = json.loads(path.read_text())["abi"]
    events: dict[str, dict[str, Any]] = {}
    for entry in abi:
        if entry.get("type") != "event" or entry.get("anonymous"):
            continue
        signature = f"{entry['name']}({','.join(_canonical_type(p) for p in entry['inputs'])})"
        events["0x" + keccak(text=signature).hex()] = entry
    return events


def _hex_bytes(value: str, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise UndecodableLog(f"{what} is not 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise UndecodableLog(f"{what} is not hex") from exc


def _plain(value: Any, kind: str) -> Any:
    """Python values as DecodedEvent carries them: ints stay ints, addresses checksummed, bytes as 0x hex."""
    if isinstance(value, (list, tuple)):
        inner = kind[: kind.rindex("[")] if kind.endswith("]") else kind
        return [_plain(item, inner) for item in value]
    if kind == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def decode_log(abi_name: str, log: FetchedLog, *, contract_address: str) -> DecodedEvent:
    if not log.topics:
        raise UndecodableLog("log has no topics")
    topic0 = log.topics[0].lower()
    entry = event_abis(abi_name).get(topic0)
    if entry is None:
        raise UndecodableLog(f"unknown event topic {topic0[:18]}... for {abi_name}")
    indexed = [p for p in entry["inputs"] if p.get("indexed")]
    plain = [p for p in entry["inputs"] if not p.get("indexed")]
    if len(log.topics) != 1 + len(indexed):
        raise UndecodableLog(f"{entry['name']}: {len(log.topics)} topics, expected {1 + len(indexed)}")
    args: dict[str, Any] = {}
    try:
        for param, topic in zip(indexed, log.topics[1:], strict=True):
            raw_topic = _hex_bytes(topic, "topic")
            if len(raw_topic) != 32:
                raise UndecodableLog(f"{entry['name']}: topic of {len(raw_topic)} bytes")
            kind = _canonical_type(param)
            if kind in {"string", "bytes"} or kind.endswith("]") or kind.startswith("("):
                args[param["name"]] = "0x" + raw_topic.hex()  # only the hash of dynamic values is logged
            else:
                args[param["name"]] = _plain(eth_abi.decode([kind], raw_topic, strict=True)[0], kind)
        data = _hex_bytes(log.data, "data")
        kinds = [_canonical_type(p) for p in plain]
        values = eth_abi.decode(kinds, data, strict=True) if kinds else ()
        if kinds and eth_abi.encode(kinds, values) != data:
            raise UndecodableLog(f"{entry['name']}: data is not the canonical encoding (trailing or stray bytes)")
        if not kinds and data:
            raise UndecodableLog(f"{entry['name']}: unexpected data")
    except (DecodingError, ValueError, OverflowError) as exc:
        raise UndecodableLog(f"{entry['name']}: {type(exc).__name__}: {exc}"[:500]) from exc
    for param, value, kind in zip(plain, values, kinds, strict=True):
        args[param["name"]] = _plain(value, kind)
    return DecodedEvent(
        event_name=str(entry["name"]),
        args=args,
        contract_address=contract_address,
        tx_hash=log.tx_hash,
        log_index=log.log_index,
        block_number=log.block_number,
        block_timestamp=log.block_timestamp,
    )


def args_to_json(value: Any) -> Any:
    """Decoded args as JSON: integers as decimal strings (uint256 does not fit a JSON number)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {key: args_to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [args_to_json(item) for item in value]
    return value
