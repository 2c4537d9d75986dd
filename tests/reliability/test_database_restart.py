"""Scenario 3: PostgreSQL stopped for 20 s in the middle of a payout and started again (same data,
same port). Meanwhile web answers 503 on /readyz naming the database, and /healthz stays 200; no
process is restarted by the test: the workers, the chain lane and beat recover on their own, the
payout completes, nothing is paid twice, nobody is skipped and the nonces have no gap."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests

from chain.localchain import ANVIL_DEV_KEYS
from chain.signers import LocalKeySigner
from tests.reliability.checks import check_nonces, check_paid_once, lane_statuses
from tests.reliability.stack import Stack, running_stack, summary, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1500)]

HOLDERS = int(os.environ.get("RELIABILITY_HOLDERS", "1000"))
DOWN_SECONDS = 20
POLL_EVERY_SECONDS = 0.5
READY_AGAIN_WITHIN_SECONDS = 60
RUN_LIMIT_SECONDS = 900


def probe(stack: Stack, path: str) -> tuple[int, str]:
    """One GET of a health endpoint: its status code (0 when no answer at all) and body."""
    try:
        response = requests.get(stack.web_url + path, timeout=5)
    except requests.RequestException as exc:
        return 0, type(exc).__name__
    return response.status_code, response.text


def batches_by_status(stack: Stack, distribution_id: str) -> Counter[str]:
    rows = stack.sql(
        "SELECT status, count(*) FROM payouts_batchpayout WHERE distribution_id = %s GROUP BY status",
        uuid.UUID(distribution_id),
    )
    return Counter({str(status): int(count) for status, count in rows})


def test_postgres_stopped_mid_payout_answers_503_then_every_process_recovers_and_pays_once(tmp_path: Path) -> None:
    with running_stack(tmp_path, holders=HOLDERS, block_time=1, settings={"PAYOUT_BATCH_SIZE": "20"}) as stack:
        asset_id = stack.import_asset(stack.asset)
        sender = LocalKeySigner(ANVIL_DEV_KEYS[0]).address
        nonce_before = stack.chain.nonce(sender, "latest")
        distribution_id = stack.pay_now(asset_id, "2000")

        # given: a payout in mid-execution, some batches done and most still to go
        wait_until(
            lambda: batches_by_status(stack, distribution_id)["COMPLETED"] >= 1,
            timeout=300,
            what="a first batch completed",
            every=0.2,
        )
        at_stop = batches_by_status(stack, distribution_id)
        lane_at_stop = lane_statuses(stack, distribution_id)
        assert sum(at_stop.values()) > at_stop["COMPLETED"], f"the payout ran out of batches before the stop: {at_stop}"

        # when: PostgreSQL stops for DOWN_SECONDS, web is probed all along, then it starts again
        readyz: Counter[int] = Counter()
        healthz: Counter[int] = Counter()
        failing: Counter[str] = Counter()
        stack.stop_postgres()
        stopped_at = time.monotonic()
        while time.monotonic() - stopped_at < DOWN_SECONDS:
            code, body = probe(stack, "/readyz")
            readyz[code] += 1
            if code == 503:
                failing.update(json.loads(body)["failing"])
            healthz[probe(stack, "/healthz")[0]] += 1
            time.sleep(POLL_EVERY_SECONDS)
        outage_readyz, outage_healthz = Counter(readyz), Counter(healthz)
        stack.start_postgres()
        started_at = time.monotonic()
        while True:
            code, _ = probe(stack, "/readyz")
            readyz[code] += 1
            healthz[probe(stack, "/healthz")[0]] += 1
            if code == 200:
                break
            assert time.monotonic() - started_at < READY_AGAIN_WITHIN_SECONDS, f"/readyz still {code}"
            time.sleep(POLL_EVERY_SECONDS)
        ready_after = time.monotonic() - started_at

        # then: the payout finishes without any process being restarted
        deadline = time.monotonic() + RUN_LIMIT_SECONDS
        while stack.distribution_status(distribution_id) not in ("COMPLETED", "FAILED"):
            assert time.monotonic() < deadline, f"not finished {RUN_LIMIT_SECONDS}s after the database came back"
            time.sleep(1)
        finished_after = time.monotonic() - started_at

        assert outage_readyz[503] >= DOWN_SECONDS / (POLL_EVERY_SECONDS + 1), f"/readyz during the outage: {readyz}"
        assert set(outage_readyz) == {503}, f"/readyz during the outage answered {dict(outage_readyz)}"
        assert failing.keys() == {"database"}, f"/readyz named {dict(failing)} as failing"
        assert set(readyz) <= {200, 503}, f"/readyz answered {dict(readyz)}"
        assert set(healthz) == {200}, f"/healthz answered {dict(healthz)}"
        for name, process in stack.processes.items():
            assert process.running(), f"{name} exited:\n{process.log()[-3000:]}"
            assert process.starts == 1, f"{name} was started {process.starts} times"
        paid = check_paid_once(stack, stack.asset, distribution_id)
        nonces = check_nonces(stack, sender, nonce_before)
        summary(
            "database_restart",
            down_s=DOWN_SECONDS,
            batches_done_at_stop=f"{at_stop['COMPLETED']}/{sum(at_stop.values())}",
            lane_at_stop=",".join(f"{status}:{count}" for status, count in sorted(lane_at_stop.items())),
            readyz_503=outage_readyz[503],
            readyz_other_5xx=sum(n for code, n in readyz.items() if code >= 500 and code != 503),
            healthz=",".join(f"{code}x{n}" for code, n in sorted(healthz.items())),
            healthz_during_outage=",".join(f"{code}x{n}" for code, n in sorted(outage_healthz.items())),
            ready_after_s=f"{ready_after:.1f}",
            finished_after_s=f"{finished_after:.0f}",
            restarts=sum(process.starts - 1 for process in stack.processes.values()),
            holders=paid.holders,
            paid_once=paid.paid_once,
            db_matches_chain=paid.db_matches_chain,
            nonces=nonces,
        )
