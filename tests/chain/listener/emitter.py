"""A tiny hand-assembled contract that emits whatever log a test asks for (forged, truncated, unknown).

Calldata: `count (32 bytes) | topic0 (32 bytes) | data...`; it emits `count` LOG1 records with that
topic and data in one transaction. Its ABI is registered nowhere, which is the point.
"""

from __future__ import annotations

import time
from typing import Any

import requests

# PUSH1 0x40 CALLDATASIZE SUB DUP1 PUSH1 0x40 PUSH1 0 CALLDATACOPY        mem[0:len] = calldata[64:]
# PUSH1 0x20 CALLDATALOAD PUSH1 0 CALLDATALOAD                             stack: len topic count
# loop: JUMPDEST DUP1 ISZERO PUSH1 end JUMPI DUP2 DUP4 PUSH1 0 LOG1        emit one log
#       PUSH1 1 SWAP1 SUB PUSH1 loop JUMP                                  count -= 1
# end:  JUMPDEST STOP
RUNTIME = bytes.fromhex("604036038060406000376020356000355b801560225781836000a1600190036010565b00")
# PUSH1 len PUSH1 12 PUSH1 0 CODECOPY PUSH1 len PUSH1 0 RETURN, then the runtime code
INIT = bytes([0x60, len(RUNTIME), 0x60, 0x0C, 0x60, 0x00, 0x39, 0x60, len(RUNTIME), 0x60, 0x00, 0xF3]) + RUNTIME


def rpc(url: str, method: str, *params: Any) -> Any:
    body = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=10)
    payload = body.json()
    if payload.get("error"):
        raise RuntimeError(payload["error"])
    return payload["result"]


def first_account(url: str) -> str:
    return str(rpc(url, "eth_accounts")[0])


def send(url: str, to: str | None, data: bytes) -> dict[str, Any]:
    """Send a transaction from anvil's first (unlocked) account; return its receipt (anvil mines at once)."""
    tx: dict[str, Any] = {"from": first_account(url), "data": "0x" + data.hex(), "gas": hex(3_000_000)}
    if to is not None:
        tx["to"] = to
    tx_hash = rpc(url, "eth_sendTransaction", tx)
    deadline = time.monotonic() + 10
    receipt = None
    while receipt is None and time.monotonic() < deadline:
        receipt = rpc(url, "eth_getTransactionReceipt", tx_hash)
        if receipt is None:
            time.sleep(0.01)
    assert receipt is not None
    assert receipt["status"] == "0x1", receipt
    return dict(receipt)


def deploy_emitter(url: str) -> str:
    return str(send(url, None, INIT)["contractAddress"])


def emit(url: str, emitter: str, topic0: str, data: bytes = b"", count: int = 1) -> dict[str, Any]:
    calldata = count.to_bytes(32, "big") + bytes.fromhex(topic0.removeprefix("0x").rjust(64, "0")) + data
    return send(url, emitter, calldata)
