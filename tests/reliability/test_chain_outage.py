"""Scenario 4: the chain (an RPC proxy in front of anvil) cut off for 30 s for every process, while a
payout's batches are on their way and while the asset's listeners poll every 2 s. Transactions wait
and resume; every holder is paid once; the nonces have no gap; each listener resumes from its
cursor: the events it stored are exactly the logs on chain (by transaction hash and log index), each
once, processed once, and its cursor reaches the head."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from chain.localchain import ANVIL_DEV_KEYS
from chain.signers import LocalKeySigner
from tests.reliability.checks import (
    ListenerStream,
    check_listener_stream,
    check_nonces,
    check_paid_once,
    lane_statuses,
)
from tests.reliability.stack import Stack, running_stack, summary, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1500)]

HOLDERS = int(os.environ.get("RELIABILITY_HOLDERS", "1000"))
DOWN_SECONDS = 30
COMMIT_GRACE_SECONDS = 3
RUN_LIMIT_SECONDS = 900


def listeners_of(stack: Stack, asset_id: str) -> dict[str, int]:
    """The asset's listeners (token, payout contract, payment token) by suffix."""
    rows = stack.sql("SELECT id, name FROM chain_eventlistener WHERE name LIKE %s", f"asset-{asset_id}-%")
    return {str(name).rsplit("-", 1)[1]: int(pk) for pk, name in rows}


def cursors(stack: Stack, listener_ids: list[int]) -> dict[int, int | None]:
    rows = stack.sql("SELECT id, last_processed_block FROM chain_eventlistener WHERE id = ANY(%s)", listener_ids)
    return {int(pk): cursor for pk, cursor in rows}


def stored_events(stack: Stack, listener_id: int) -> int:
    return int(stack.sql("SELECT count(*) FROM chain_chainevent WHERE listener_id = %s", listener_id)[0][0])


def mid_sending(lane: Counter[str]) -> Counter[str] | None:
    """`lane` when some batches were sent and others are still to send (not handed, unsigned, unsent)."""
    unsent = lane["QUEUED"] + lane["PENDING"] + lane["SIGNED"]
    return lane if 0 < unsent < sum(lane.values()) else None


def test_the_chain_cut_for_30s_mid_payout_and_mid_polling_loses_and_repeats_nothing(tmp_path: Path) -> None:
    settings = {"PAYOUT_BATCH_SIZE": "20", "BLOCKCHAIN_POLLING_INTERVAL": "2000"}
    with running_stack(tmp_path, holders=HOLDERS, block_time=1, settings=settings) as stack:
        asset_id = stack.import_asset(stack.asset)
        listeners = listeners_of(stack, asset_id)
        assert set(listeners) == {"token", "payout", "payment"}, listeners
        ids = list(listeners.values())
        wait_until(
            lambda: all(c is not None for c in cursors(stack, ids).values()),
            timeout=60,
            what="every listener's first poll",
        )
        sender = LocalKeySigner(ANVIL_DEV_KEYS[0]).address
        nonce_before = stack.chain.nonce(sender, "latest")
        distribution_id = stack.pay_now(asset_id, "2000")

        # given: the lane half way through sending the batches (some sent, some still to send),
        # and the listeners polling every 2 s from the cursors they hold
        lane_at_cut: Counter[str] = wait_until(
            lambda: mid_sending(lane_statuses(stack, distribution_id)),
            timeout=300,
            what="batches sent while others are still to send",
            every=0.05,
        )
        events_at_cut = stored_events(stack, listeners["payout"])

        # when: the chain is cut off for every process for DOWN_SECONDS
        stack.proxy.stop()
        cut_at = time.monotonic()
        cursors_at_cut: dict[int, int | None] = {}
        readyz: Counter[int] = Counter()
        failing: Counter[str] = Counter()
        while time.monotonic() - cut_at < DOWN_SECONDS:
            response = requests.get(stack.web_url + "/readyz", timeout=10)
            readyz[response.status_code] += 1
            if response.status_code == 503:
                failing.update(json.loads(response.text)["failing"])
            if not cursors_at_cut and time.monotonic() - cut_at > COMMIT_GRACE_SECONDS:
                cursors_at_cut = cursors(stack, ids)  # a page fetched just before the cut has committed
            time.sleep(1)
        cursors_during = cursors(stack, ids)
        errors_during = dict(stack.sql("SELECT name, last_error FROM chain_eventlistener WHERE id = ANY(%s)", ids))
        stack.proxy.start()
        back_at = time.monotonic()

        # then: the payout completes once, and every listener catches up to the head, gap-free
        deadline = back_at + RUN_LIMIT_SECONDS
        while stack.distribution_status(distribution_id) not in ("COMPLETED", "FAILED"):
            assert time.monotonic() < deadline, f"not finished {RUN_LIMIT_SECONDS}s after the chain came back"
            time.sleep(1)
        finished_after = time.monotonic() - back_at
        head = stack.chain.block_number()
        wait_until(
            lambda: all(c is not None and c >= head - 1 for c in cursors(stack, ids).values()),
            timeout=120,
            what=f"every listener's cursor at head {head} (less one confirmation)",
            every=0.5,
        )
        caught_up_after = time.monotonic() - back_at

        assert readyz[503] > 0, f"/readyz while the chain was cut: {dict(readyz)}"
        assert set(readyz) == {503}, f"/readyz while the chain was cut: {dict(readyz)}"
        assert failing.keys() == {"chain_rpc"}, f"/readyz named {dict(failing)} as failing"
        assert cursors_during == cursors_at_cut, f"cursors moved while cut: {cursors_at_cut} -> {cursors_during}"
        assert all(errors_during.values()), f"a listener recorded no failure while the chain was cut: {errors_during}"
        paid = check_paid_once(stack, stack.asset, distribution_id)
        nonces = check_nonces(stack, sender, nonce_before)
        streams: dict[str, ListenerStream] = {
            suffix: check_listener_stream(stack, listener_id) for suffix, listener_id in listeners.items()
        }
        assert streams["payout"].names["HolderPaid"] == paid.holders, streams["payout"].names
        processed = Counter(
            f"{status}x{attempts}"
            for status, attempts in stack.sql(
                "SELECT status, attempts FROM chain_chainevent WHERE listener_id = ANY(%s)", ids
            )
        )
        assert set(processed) <= {"PROCESSEDx1", "NO_PROCESSORx0"}, f"events by status and runs: {dict(processed)}"
        failed_polls = stack.processes["worker"].log().count("listener poll failed")
        lane_failed = stack.sql(
            "SELECT count(*) FROM chain_chaintransaction WHERE status IN ('FAILED', 'REVERTED', 'CANCELLED')"
        )[0][0]
        assert lane_failed == 0, f"{lane_failed} chain transactions did not go through"
        summary(
            "chain_outage",
            down_s=DOWN_SECONDS,
            lane_at_cut=",".join(f"{status}:{count}" for status, count in sorted(lane_at_cut.items())),
            payout_events_at_cut=events_at_cut,
            readyz_503=readyz[503],
            failed_polls=failed_polls,
            finished_after_s=f"{finished_after:.0f}",
            caught_up_after_s=f"{caught_up_after:.0f}",
            holders=paid.holders,
            paid_once=paid.paid_once,
            db_matches_chain=paid.db_matches_chain,
            nonces=nonces,
            events=",".join(
                f"{suffix}:{stream.stored}/{stream.on_chain}" for suffix, stream in sorted(streams.items())
            ),
            holder_paid=streams["payout"].names["HolderPaid"],
            processed=",".join(f"{key}:{count}" for key, count in sorted(processed.items())),
            missing=0,
            duplicates=0,
        )
