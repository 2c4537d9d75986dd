"""Scenario 1: the chain worker (and a few times the default worker) killed with `kill -9` at random
moments of a 2,000-holder payout, and started again each time. Nothing is paid twice, nobody is
skipped, the database agrees with the chain, the nonce sequence has no gap and no duplicate."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from chain.localchain import ANVIL_DEV_KEYS
from chain.signers import LocalKeySigner
from tests.reliability.checks import check_nonces, check_paid_once
from tests.reliability.stack import Stack, running_stack, summary

pytestmark = pytest.mark.reliability

HOLDERS = int(os.environ.get("RELIABILITY_HOLDERS", "2000"))
MIN_CHAIN_KILLS = 10
RUN_LIMIT_SECONDS = 900


def lane_phase(stack: Stack, distribution_id: str) -> str:
    """Which steps of the payout are in flight right now, read from the database: signing (batches
    handed to the lane, not yet signed), broadcast (signed, not yet accepted by the node), receipt
    (sent, waiting for the receipt), roll-up (a final transaction whose batch is not yet rolled up)."""
    rows = stack.sql(
        """
        SELECT t.status, b.status FROM payouts_batchpayout b
        JOIN chain_chaintransaction t ON t.id = b.chain_transaction_id
        WHERE b.distribution_id = %s AND b.status IN ('PENDING', 'IN_PROGRESS')
        """,
        uuid.UUID(distribution_id),
    )
    phases = {
        "PENDING": "signing",
        "SIGNED": "broadcast",
        "BROADCAST": "receipt",
        "MINED": "receipt",
        "CONFIRMED": "rollup",
        "REVERTED": "rollup",
        "FAILED": "rollup",
        "CANCELLED": "rollup",
    }
    found = sorted({phases[tx_status] for tx_status, _ in rows})
    return "+".join(found) or "planning"


AIMS = ("signing", "broadcast", "receipt", "rollup", "signing", "receipt", "broadcast")


def wait_for_phase(stack: Stack, distribution_id: str, aim: str, rng: random.Random) -> str:
    """Poll for up to a few seconds until `aim` is in flight; the phase seen at the kill either way."""
    deadline = time.monotonic() + rng.uniform(1, 4)
    while True:
        phase = lane_phase(stack, distribution_id)
        if aim in phase.split("+") or time.monotonic() > deadline:
            return phase
        time.sleep(0.01)


def test_workers_killed_at_random_moments_pay_every_holder_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("RELIABILITY_SEED", "20261202")))
    with running_stack(tmp_path, holders=HOLDERS, block_time=1, settings={"PAYOUT_BATCH_SIZE": "20"}) as stack:
        asset_id = stack.import_asset(stack.asset)
        sender = LocalKeySigner(ANVIL_DEV_KEYS[0]).address
        nonce_before = stack.chain.nonce(sender, "latest")
        distribution_id = stack.pay_now(asset_id, "2000")
        kills: Counter[str] = Counter()
        phases: Counter[str] = Counter()
        deadline = time.monotonic() + RUN_LIMIT_SECONDS
        while stack.distribution_status(distribution_id) not in ("COMPLETED", "FAILED"):
            assert time.monotonic() < deadline, f"not finished within {RUN_LIMIT_SECONDS}s after {dict(kills)} kills"
            time.sleep(rng.uniform(0.2, 1.5))
            # mostly the chain worker, every fourth kill the default worker (planning, roll-up, sweeps);
            # each kill waits (a little) for a moment when the step it aims at is in flight
            number = sum(kills.values())
            target = "worker" if number % 4 == 3 else "chain"
            phase = wait_for_phase(stack, distribution_id, AIMS[number % len(AIMS)], rng)
            stack.kill(target)
            kills[target] += 1
            phases[phase] += 1
            stack.start_process(target)
        paid = check_paid_once(stack, stack.asset, distribution_id)
        nonces = check_nonces(stack, sender, nonce_before)
        assert kills["chain"] >= MIN_CHAIN_KILLS, f"the payout finished after only {kills['chain']} chain-worker kills"
        summary(
            "worker_kill",
            kills=sum(kills.values()),
            chain_kills=kills["chain"],
            default_kills=kills["worker"],
            phases=",".join(f"{name}:{count}" for name, count in sorted(phases.items())),
            holders=paid.holders,
            paid_once=paid.paid_once,
            db_matches_chain=paid.db_matches_chain,
            nonces=nonces,
            lost=paid.holders - paid.paid_once,
        )
