"""JSON-RPC log source: the chain head, `eth_getLogs` over a block range, and block timestamps.

Plain JSON-RPC over `requests` so that every failure is classified here: the endpoint being
unreachable (`RpcUnavailable`: retrying with a smaller range is pointless) or a request the node
refused or could not finish in time (`RpcRequestFailed`: "too many results", "query timeout",
a read timeout... the caller halves the block range and tries again).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import requests

from chain.listener.types import FetchedLog


class RpcSourceError(Exception):
    """Base of the log source's errors."""


class RpcUnavailable(RpcSourceError):
    """Connection refused or reset: the node is down or unreachable."""


class RpcRequestFailed(RpcSourceError):
    """The node answered with an error, an unusable body, or did not answer in time."""


class RpcLogSource:
    def __init__(self, rpc_url: str, *, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        if not rpc_url:
            raise RpcUnavailable("CHAIN_RPC_URL is not set")
        self.rpc_url = rpc_url
        self.timeout = timeout
        self.session = session or requests.Session()
        self._ids = itertools.count(1)

    def _call(self, method: str, params: list[Any]) -> Any:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self.session.post(self.rpc_url, json=payload, timeout=self.timeout)
        except requests.Timeout as exc:
            raise RpcRequestFailed(f"{method} timed out") from exc
        except requests.RequestException as exc:
            raise RpcUnavailable(f"{method}: RPC unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise RpcRequestFailed(f"{method}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RpcRequestFailed(f"{method}: HTTP {response.status_code}, not JSON") from exc
        if not isinstance(body, dict):
            raise RpcRequestFailed(f"{method}: unexpected body")
        if body.get("error"):
            error = body["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise RpcRequestFailed(f"{method}: {message}"[:500])
        return body.get("result")

    def head(self) -> int:
        return int(self._call("eth_blockNumber", []), 16)

    def get_logs(self, address: str, from_block: int, to_block: int) -> list[FetchedLog]:
        result = self._call(
            "eth_getLogs", [{"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}]
        )
        if not isinstance(result, list):
            raise RpcRequestFailed("eth_getLogs: result is not a list")
        logs: list[FetchedLog] = []
        for item in result:
            if item.get("removed"):
                continue  # only seen on filters across a reorg; a fixed range behind the head has none
            block_timestamp = None
            if item.get("blockTimestamp"):
                block_timestamp = dt.datetime.fromtimestamp(int(item["blockTimestamp"], 16), tz=dt.UTC)
            logs.append(
                FetchedLog(
                    address=str(item["address"]),
                    topics=tuple(str(topic) for topic in item.get("topics") or []),
                    data=str(item.get("data") or "0x"),
                    tx_hash=str(item["transactionHash"]).lower(),
                    log_index=int(item["logIndex"], 16),
                    block_number=int(item["blockNumber"], 16),
                    block_timestamp=block_timestamp,
                    consensus_timestamp="",
                    raw=item,
                )
            )
        return logs

    def block_timestamp(self, number: int) -> dt.datetime:
        block = self._call("eth_getBlockByNumber", [hex(number), False])
        if not isinstance(block, dict):
            raise RpcRequestFailed(f"block {number} not found")
        return dt.datetime.fromtimestamp(int(block["timestamp"], 16), tz=dt.UTC)
