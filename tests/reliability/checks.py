"""End-state checks of the reliability scenarios, read from the chain and the stack's database."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

from hexbytes import HexBytes

from chain.abi import event_topic
from tests.payouts.chainkit import DemoAsset
from tests.reliability.stack import Stack


@dataclass(frozen=True)
class PaidOnce:
    holders: int
    paid_once: int  # holders whose balance is their planned amount and who have exactly one HolderPaid
    db_matches_chain: int  # payments the database records as SUCCESS with the amount the chain shows


def check_paid_once(stack: Stack, demo: DemoAsset, distribution_id: str) -> PaidOnce:
    """Every holder paid exactly once on chain, and the database agrees row for row."""
    chain_id, status = stack.sql(
        "SELECT chain_distribution_id, status FROM payouts_distribution WHERE id = %s", uuid.UUID(distribution_id)
    )[0]
    assert status == "COMPLETED", status
    planned = {
        address.lower(): (int(amount), payment_status)
        for address, amount, payment_status in stack.sql(
            "SELECT holder_address, amount, status FROM payouts_holderpayment WHERE distribution_id = %s",
            uuid.UUID(distribution_id),
        )
    }
    assert len(planned) == len(demo.holders), (len(planned), len(demo.holders))
    logs = stack.chain.web3.eth.get_logs(
        {
            "address": stack.chain.web3.to_checksum_address(demo.payout),
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": [event_topic("HolderPaid"), HexBytes(chain_id)],
        }
    )
    events = Counter("0x" + bytes(log["topics"][3])[-20:].hex() for log in logs)
    assert set(events) <= set(planned), "HolderPaid for an address that was not planned"
    paid_once = db_matches = 0
    for holder in demo.holders:
        amount, payment_status = planned[holder.lower()]
        balance = stack.chain.erc20_balance(demo.payment_token, holder)
        once = balance == amount and events[holder.lower()] == 1
        paid_once += once
        db_matches += once and payment_status == "SUCCESS"
    assert paid_once == len(demo.holders), f"paid exactly once: {paid_once} of {len(demo.holders)}"
    assert db_matches == len(demo.holders), f"database agrees with the chain: {db_matches} of {len(demo.holders)}"
    return PaidOnce(holders=len(demo.holders), paid_once=paid_once, db_matches_chain=db_matches)


def lane_statuses(stack: Stack, distribution_id: str) -> Counter[str]:
    """How many of the distribution's batches are at each lane status of their transaction
    (QUEUED: not handed to the lane yet)."""
    rows = stack.sql(
        """
        SELECT coalesce(t.status, 'QUEUED'), count(*) FROM payouts_batchpayout b
        LEFT JOIN chain_chaintransaction t ON t.id = b.chain_transaction_id
        WHERE b.distribution_id = %s GROUP BY 1
        """,
        uuid.UUID(distribution_id),
    )
    return Counter({str(status): int(count) for status, count in rows})


def check_nonces(stack: Stack, sender: str, nonce_before: int) -> int:
    """The sender's nonces from `nonce_before` to the chain's count were each taken by exactly one
    transaction the lane recorded as final on chain: no gap, no duplicate. Returns how many."""
    nonce_after = stack.chain.nonce(sender, "latest")
    rows = stack.sql(
        "SELECT nonce FROM chain_chaintransaction WHERE lower(sender) = lower(%s) AND nonce >= %s"
        " AND status IN ('CONFIRMED', 'REVERTED', 'CANCELLED')",
        sender,
        nonce_before,
    )
    nonces = sorted(int(nonce) for (nonce,) in rows)
    assert nonces == list(range(nonce_before, nonce_after)), (nonces[:5], nonce_before, nonce_after)
    return len(nonces)


@dataclass(frozen=True)
class ListenerStream:
    name: str
    cursor: int
    on_chain: int  # logs the contract emitted from the listener's start block to its cursor
    stored: int  # events the listener stored, each (transaction hash, log index) once
    names: Counter[str]  # stored events by event name


def check_listener_stream(stack: Stack, listener_id: int) -> ListenerStream:
    """The events a listener stored are exactly the logs its contract emitted from its start block up
    to its cursor, by (transaction hash, log index), each once: no gap, no duplicate, nothing else."""
    name, address, start_block, cursor = stack.sql(
        "SELECT name, contract_address, start_block, last_processed_block FROM chain_eventlistener WHERE id = %s",
        listener_id,
    )[0]
    assert cursor is not None, f"listener {name} never moved its cursor"
    on_chain = Counter(
        (log["transactionHash"].lower(), int(log["logIndex"]))
        for log in stack.chain.get_logs(address=address, from_block=int(start_block), to_block=int(cursor))
    )
    rows = stack.sql("SELECT tx_hash, log_index, event_name FROM chain_chainevent WHERE listener_id = %s", listener_id)
    stored = Counter((str(tx_hash).lower(), int(log_index)) for tx_hash, log_index, _ in rows)
    duplicates = sorted(key for key, count in stored.items() if count > 1)
    assert not duplicates, f"listener {name} stored twice: {duplicates[:5]}"
    assert max(on_chain.values(), default=1) == 1, f"the chain returned one log twice for {name}"
    missing = sorted(set(on_chain) - set(stored))
    extra = sorted(set(stored) - set(on_chain))
    assert not missing, f"listener {name} missed {len(missing)} of {len(on_chain)} logs, e.g. {missing[:3]}"
    assert not extra, f"listener {name} stored {len(extra)} events the chain does not show, e.g. {extra[:3]}"
    return ListenerStream(
        name=str(name),
        cursor=int(cursor),
        on_chain=len(on_chain),
        stored=len(stored),
        names=Counter(str(event_name) for _, _, event_name in rows),
    )
