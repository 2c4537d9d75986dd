"""Scenario 2: the broker restarts empty. Redis is killed, and started again empty a few seconds later,
while a payout runs and while 1,000 outbound webhooks are pending (queued, in flight, or waiting for
a retry the receiver asked for). Nothing is lost and nothing is paid twice: every holder is paid once,
the nonce sequence has no gap and no duplicate, every delivery ends delivered, the receiver sees every
delivery's webhook-id and no event under two ids, all within a bounded time after Redis returns."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from chain.localchain import ANVIL_DEV_KEYS
from chain.signers import LocalKeySigner
from tests.agreements.servers import Reply
from tests.reliability.checks import check_nonces, check_paid_once
from tests.reliability.stack import Stack, running_stack, summary, wait_until
from tests.reliability.webhooks import announce_agreements, answer_from_now_on, check_delivered, delivery_statuses

pytestmark = pytest.mark.reliability

HOLDERS = int(os.environ.get("RELIABILITY_HOLDERS", "1000"))
DELIVERIES = 1000
REDIS_DOWN_SECONDS = 5
# From Redis back to the last delivery: a sweep (WEBHOOK_SWEEP_EVERY_SECONDS, 5 s in the stack) of the
# deliveries overdue by WEBHOOK_SWEEP_AFTER_SECONDS (15 s), then 1,000 tries on the two worker
# processes that also run the payout's planning and roll-ups.
DELIVERED_WITHIN_SECONDS = 90
PAYOUT_WITHIN_SECONDS = 600
SETTINGS = {
    "PAYOUT_BATCH_SIZE": "20",
    # the receiver refuses for as long as the deliveries pile up: the budget must outlast that
    "WEBHOOK_MAX_RETRIES": "50",
}


def batches(stack: Stack, distribution_id: str) -> dict[str, int]:
    """The payout's batches: finished (rolled up), on chain (broadcast, mined or confirmed, not yet
    rolled up), and waiting (not yet signed or not yet accepted by the node)."""
    rows = stack.sql(
        """
        SELECT b.status, t.status FROM payouts_batchpayout b
        LEFT JOIN chain_chaintransaction t ON t.id = b.chain_transaction_id
        WHERE b.distribution_id = %s
        """,
        uuid.UUID(distribution_id),
    )
    counts = {"finished": 0, "on_chain": 0, "waiting": 0}
    for batch_status, tx_status in rows:
        if batch_status not in ("PENDING", "IN_PROGRESS"):
            counts["finished"] += 1
        elif tx_status in ("BROADCAST", "MINED", "CONFIRMED"):
            counts["on_chain"] += 1
        else:
            counts["waiting"] += 1
    return counts


def mid_payout(stack: Stack, distribution_id: str) -> dict[str, int] | None:
    """The batch counts once some batches are on chain and others still wait for the lane."""
    counts = batches(stack, distribution_id)
    return counts if counts["on_chain"] and counts["waiting"] else None


def test_redis_restarted_empty_mid_payout_and_mid_webhooks_loses_nothing_and_pays_nobody_twice(
    tmp_path: Path,
) -> None:
    with running_stack(tmp_path, holders=HOLDERS, block_time=1, settings=SETTINGS) as stack:
        asset_id = stack.import_asset(stack.asset)
        sender = LocalKeySigner(ANVIL_DEV_KEYS[0]).address
        nonce_before = stack.chain.nonce(sender, "latest")
        # given a receiver that answers slowly and refuses (503, Retry-After), so 1,000 deliveries pile
        # up: queued in Redis, in flight, or waiting in the worker for the retry it asked for
        answer_from_now_on(stack.receiver, Reply(status=503, headers=(("Retry-After", "5"),), stall=1.0))
        announce_agreements(stack, DELIVERIES)
        # and a payout with some batches on chain and others still waiting for the lane
        distribution_id = stack.pay_now(asset_id, "2000")
        at_kill = wait_until(
            lambda: mid_payout(stack, distribution_id), timeout=300, what="the payout's batches in flight", every=0.1
        )
        pending_before = delivery_statuses(stack)
        assert pending_before == {"PENDING": DELIVERIES}, pending_before

        # when Redis is killed and started again empty, and the receiver answers again
        stack.restart_redis_empty(down_seconds=REDIS_DOWN_SECONDS)
        redis_back = time.monotonic()
        first_accepted = answer_from_now_on(stack.receiver, Reply())

        # then every delivery is delivered, and the payout completes, within their bounds
        done: dict[str, float] = {}  # seconds after Redis came back
        while len(done) < 2:
            since_back = time.monotonic() - redis_back
            assert since_back < PAYOUT_WITHIN_SECONDS, f"not within {PAYOUT_WITHIN_SECONDS}s, only {done}"
            if "delivered" not in done and delivery_statuses(stack).get("SUCCESS") == DELIVERIES:
                done["delivered"] = since_back
            if "payout" not in done and stack.distribution_status(distribution_id) in ("COMPLETED", "FAILED"):
                done["payout"] = since_back
            time.sleep(0.5)
        assert done["delivered"] <= DELIVERED_WITHIN_SECONDS, (
            f"all delivered {done['delivered']:.0f}s after Redis was back"
        )
        # every holder paid exactly once, no nonce skipped or reused, every webhook delivered
        paid = check_paid_once(stack, stack.asset, distribution_id)
        nonces = check_nonces(stack, sender, nonce_before)
        with stack.receiver.lock:
            accepted = stack.receiver.requests[first_accepted:]
        delivered = check_delivered(stack, accepted)
        alerts = [m for m in stack.discord.messages if "Webhook delivery" in str(m)]
        assert alerts == [], "a delivery gave up"
        assert stack.webhook_password not in stack.logs()
        summary(
            "broker_restart",
            redis_down_s=REDIS_DOWN_SECONDS,
            holders=paid.holders,
            batches_at_kill=",".join(f"{name}:{count}" for name, count in at_kill.items()),
            paid_once=paid.paid_once,
            db_matches_chain=paid.db_matches_chain,
            nonces=nonces,
            deliveries=delivered.deliveries,
            distinct_webhook_ids=delivered.distinct_ids,
            repeats=delivered.repeats,
            delivered_after_s=f"{done['delivered']:.1f}",
            payout_done_after_s=f"{done['payout']:.1f}",
            lost=(paid.holders - paid.paid_once) + (delivered.deliveries - delivered.distinct_ids),
        )
