"""Scenario 7: 200 concurrent clients post signed inbound webhooks to gunicorn (2 workers, as the
Procfile runs it) for 60 s while a 2,000-holder payout runs. No answer is a 5xx, every accepted
event is logged exactly once, and the payout still completes, paying each holder once."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from chain.localchain import ANVIL_DEV_KEYS
from chain.signers import LocalKeySigner
from tests.agreements.factories import agreement_body
from tests.agreements.servers import sign_documented
from tests.reliability.checks import check_nonces, check_paid_once
from tests.reliability.stack import Stack, running_stack, summary, wait_until

pytestmark = pytest.mark.reliability

HOLDERS = int(os.environ.get("RELIABILITY_HOLDERS", "2000"))
CLIENTS = 200
SECONDS = 60
RESEND_EVERY = 10  # every tenth request re-sends an earlier webhook (same id, same body): a duplicate


class LoadResult:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[int | str] = Counter()
        self.latencies: list[float] = []
        self.accepted: dict[str, str] = {}  # webhook-id -> tx_hash, of each 202

    def record(self, status: int | str, latency: float, webhook_id: str, tx_hash: str) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(latency)
            if status == 202:
                self.accepted[webhook_id] = tx_hash


def client_loop(stack: Stack, agreement_id: str, deadline: float, result: LoadResult) -> None:
    session = requests.Session()
    sent: list[tuple[bytes, dict[str, str], str]] = []
    number = 0
    while time.monotonic() < deadline:
        number += 1
        if sent and number % RESEND_EVERY == 0:
            body, headers, tx_hash = sent[-1]
            headers = headers | sign_documented(
                body=body,
                private_pem=stack.service_private_pem,
                application_id=stack.application_id,
                webhook_id=headers["webhook-id"],
            )
        else:
            tx_hash = "0x" + secrets.token_hex(32)
            body = json.dumps(
                {
                    "type": "INIT_DATA",
                    "data": {
                        "agreement_id": agreement_id,
                        "tx_hash": tx_hash,
                        "tx_block_number": 123456,
                        "tx_block_timestamp": 1_712_345_678,
                        "contract_address": "0x" + "ab" * 20,
                        "data": {"n": number},
                    },
                }
            ).encode()
            headers = sign_documented(
                body=body,
                private_pem=stack.service_private_pem,
                application_id=stack.application_id,
                webhook_id=f"msg_{uuid.uuid4().hex}",
            )
            sent = [(body, headers, tx_hash)]
        started = time.monotonic()
        try:
            response = session.post(
                stack.web_url + "/blockchain/webhook",
                data=body,
                headers={"Content-Type": "application/json", **headers},
                timeout=30,
            )
            status: int | str = response.status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        result.record(status, time.monotonic() - started, headers["webhook-id"], tx_hash)


def test_two_hundred_clients_for_a_minute_during_a_payout(tmp_path: Path) -> None:
    with running_stack(tmp_path, holders=HOLDERS, block_time=1) as stack:
        asset_id = stack.import_asset(stack.asset)
        agreement = stack.api("POST", "/api/v1/agreements/", agreement_body())
        assert agreement.status_code == 201, agreement.text
        agreement_id = agreement.json()["id"]
        sender = LocalKeySigner(ANVIL_DEV_KEYS[0]).address
        nonce_before = stack.chain.nonce(sender, "latest")
        distribution_id = stack.pay_now(asset_id, "2000")
        # when 200 clients post webhooks for 60 s while the payout runs
        result = LoadResult()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            for _ in range(CLIENTS):
                pool.submit(client_loop, stack, agreement_id, started + SECONDS, result)
        elapsed = time.monotonic() - started
        # then no 5xx and no dropped connection; the duplicates were acknowledged, not stored again
        assert set(result.statuses) <= {200, 202}, dict(result.statuses)
        assert result.statuses[202] == len(result.accepted)
        # ... every accepted event is logged exactly once
        wait_until(
            lambda: (
                stack.sql("SELECT count(*) FROM agreement_inbound_blockchain_events WHERE status = 'PROCESSED'")[0][0]
                >= len(result.accepted)
            ),
            timeout=300,
            what="every accepted event to be processed",
            every=1,
        )
        logged = Counter(
            tx_hash
            for (tx_hash,) in stack.sql(
                "SELECT tx_hash FROM agreement_blockchain_logs WHERE agreement_id = %s", uuid.UUID(agreement_id)
            )
        )
        assert set(logged) == set(result.accepted.values())
        assert set(logged.values()) == {1}
        # ... and the payout completed, each holder paid once
        wait_until(
            lambda: stack.distribution_status(distribution_id) in ("COMPLETED", "FAILED"),
            timeout=600,
            what="the payout to finish",
            every=1,
        )
        paid = check_paid_once(stack, stack.asset, distribution_id)
        check_nonces(stack, sender, nonce_before)
        latencies = sorted(result.latencies)
        summary(
            "load",
            clients=CLIENTS,
            seconds=round(elapsed),
            requests=len(latencies),
            rps=round(len(latencies) / elapsed, 1),
            p50_ms=round(statistics.median(latencies) * 1000),
            p99_ms=round(latencies[int(len(latencies) * 0.99) - 1] * 1000),
            accepted=result.statuses[202],
            duplicates_acknowledged=result.statuses[200],
            logged_once=sum(logged.values()),
            server_errors=sum(
                n for status, n in result.statuses.items() if not isinstance(status, int) or status >= 500
            ),
            holders=paid.holders,
            paid_once=paid.paid_once,
        )
