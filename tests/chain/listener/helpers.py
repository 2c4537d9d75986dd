"""Helpers of the listener suite: what the chain holds, and what the database stored."""

from __future__ import annotations

from chain.models import ChainEvent, EventListener
from tests.chain.listener.emitter import rpc


def chain_log_keys(rpc_url: str, address: str, from_block: int = 0) -> list[tuple[str, int]]:
    """(tx hash, block log index) of every log `address` emitted (from `from_block`), in chain order."""
    logs = rpc(rpc_url, "eth_getLogs", {"address": address, "fromBlock": hex(from_block), "toBlock": "latest"})
    return [(log["transactionHash"].lower(), int(log["logIndex"], 16)) for log in logs]


def chain_tx_keys(rpc_url: str, address: str) -> list[tuple[str, int]]:
    """(tx hash, index within the transaction) of every log `address` emitted: the Mirror Node's identity."""
    logs = rpc(rpc_url, "eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"})
    seen: dict[str, int] = {}
    keys = []
    for log in logs:
        tx_hash = log["transactionHash"].lower()
        position = seen.get(tx_hash, 0)
        seen[tx_hash] = position + 1
        if log["address"].lower() == address.lower():
            keys.append((tx_hash, position))
    return keys


def stored_keys(listener: EventListener) -> list[tuple[str, int]]:
    return list(
        ChainEvent.objects.filter(listener=listener)
        .order_by("block_number", "consensus_timestamp", "log_index")
        .values_list("tx_hash", "log_index")
    )


def head(rpc_url: str) -> int:
    return int(rpc(rpc_url, "eth_blockNumber"), 16)
