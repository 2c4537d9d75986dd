"""Scenario 8: a long outage of the webhook receiver. It answers 503 to everything, then goes away
altogether (connections refused), for longer than the whole retry budget of every delivery made
meanwhile: each delivery ends FAILED after 1 + WEBHOOK_MAX_RETRIES tries, with exactly one Discord
alert per cause (`webhook-delivery-failed:http_503`, `…:connection`; the others counted as suppressed,
and Discord's own 429 honoured). Once a receiver is back, an operator's "Resend failed since…" in
the admin delivers every one of them, each exactly once."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from tests.agreements.servers import Reply, field_of
from tests.reliability.stack import Stack, running_stack, summary, wait_until
from tests.reliability.webhooks import announce_agreements, answer_from_now_on, check_delivered, delivery_statuses

pytestmark = pytest.mark.reliability

PER_CAUSE = 150  # deliveries made during each part of the outage
TRIES = 4  # 1 + WEBHOOK_MAX_RETRIES (3, the default)
FAILED_WITHIN_SECONDS = 180  # each part of the outage: every try spent (backoff 1 s, 2 s, 4 s in the stack)
DELIVERED_WITHIN_SECONDS = 120  # after the resend
CAUSES = {"HTTP 503": "webhook-delivery-failed:http_503", "connection error": "webhook-delivery-failed:connection"}


def failed(stack: Stack) -> int:
    return delivery_statuses(stack).get("FAILED", 0)


def alert_decisions(stack: Stack, cause: str) -> tuple[int, int]:
    """(alerts sent in the current window, alerts suppressed since) for `cause`, read from Redis."""
    client = redis.Redis.from_url(stack.services["redis"].url)
    return int(client.exists(f"alert:sent:{cause}")), int(client.get(f"alert:suppressed:{cause}") or 0)


def cause_of(message: dict[str, object]) -> str:
    """The alert cause of a Discord message, from the last error it reports."""
    embed = message["embeds"][0]  # type: ignore[index]
    last_error = field_of(embed, "Last error")
    return next(cause for prefix, cause in CAUSES.items() if last_error.startswith(prefix))


def resend_failed_in_admin(stack: Stack, since: datetime) -> str:
    """An operator's "Resend failed since…" in the admin; the message it shows afterwards."""
    session = stack.admin_session()
    url = stack.web_url + "/admin/agreements/webhookdelivery/resend-failed/"
    assert session.get(url, timeout=30).status_code == 200
    response = session.post(
        url,
        data={
            "since_0": since.strftime("%Y-%m-%d"),
            "since_1": since.strftime("%H:%M:%S"),
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=60,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[-2000:]
    changelist = session.get(stack.web_url + response.headers["Location"], timeout=30).text
    return next(line.strip() for line in changelist.splitlines() if "queued again" in line)


def test_a_receiver_down_past_every_retry_fails_each_delivery_with_one_alert_per_cause_then_resend_delivers_all(
    tmp_path: Path,
) -> None:
    with running_stack(tmp_path, processes=("web", "worker", "beat")) as stack:
        outage_began = datetime.now(UTC).replace(microsecond=0)
        # Discord itself rate-limits the first alert once (429 with retry_after)
        stack.discord.script.append(Reply(status=429, body=b'{"message": "rate limited", "retry_after": 1.0}'))

        # given the receiver answers 503 to every request while deliveries are made
        started = time.monotonic()
        answer_from_now_on(stack.receiver, Reply(status=503))
        announce_agreements(stack, PER_CAUSE)
        wait_until(lambda: failed(stack) == PER_CAUSE, timeout=FAILED_WITHIN_SECONDS, what="503: all FAILED", every=1)
        # and then is gone (connection refused) while more are made
        stack.stop_receiver()
        announce_agreements(stack, PER_CAUSE)
        wait_until(
            lambda: failed(stack) == 2 * PER_CAUSE, timeout=FAILED_WITHIN_SECONDS, what="refused: all FAILED", every=1
        )
        all_failed_after = time.monotonic() - started

        # then every delivery is FAILED after spending every try
        assert delivery_statuses(stack) == {"FAILED": 2 * PER_CAUSE}
        tries = Counter(
            int(count)
            for (count,) in stack.sql("SELECT count(*) FROM agreement_webhook_delivery_attempts GROUP BY delivery_id")
        )
        assert tries == {TRIES: 2 * PER_CAUSE}, tries
        # and each cause had exactly one alert: one sent, every other failure of that cause suppressed
        wait_until(
            lambda: all(alert_decisions(stack, cause) == (1, PER_CAUSE - 1) for cause in CAUSES.values()),
            timeout=30,
            what="one alert sent and every other one suppressed, per cause",
        )
        assert Counter(cause_of(message) for message in stack.discord.accepted) == dict.fromkeys(CAUSES.values(), 1)
        # (Discord's 429 was honoured: the refused message was sent again once, after its retry_after)
        assert len(stack.discord.messages) == len(CAUSES) + 1

        # when a receiver is back and the operator resends every delivery that failed since the outage began
        receiver = stack.start_receiver()
        resent_at = time.monotonic()
        confirmation = resend_failed_in_admin(stack, outage_began)
        # then every delivery is delivered, each exactly once, and no further alert was sent
        wait_until(
            lambda: delivery_statuses(stack).get("SUCCESS") == 2 * PER_CAUSE,
            timeout=DELIVERED_WITHIN_SECONDS,
            what="every resent delivery delivered",
            every=0.5,
        )
        delivered_after = time.monotonic() - resent_at
        assert f"{2 * PER_CAUSE} failed delivery(ies) queued again." in confirmation, confirmation
        with receiver.lock:
            accepted = list(receiver.requests)
        delivered = check_delivered(stack, accepted)
        assert delivered.repeats == 0, f"{delivered.repeats} deliveries sent more than once after the resend"
        assert len(stack.discord.messages) == len(CAUSES) + 1
        assert stack.webhook_password not in stack.logs() + json.dumps(stack.discord.messages)
        alerts = {cause.rsplit(":", 1)[1]: alert_decisions(stack, cause) for cause in CAUSES.values()}
        summary(
            "receiver_outage",
            deliveries=delivered.deliveries,
            tries_each=TRIES,
            all_failed_after_s=f"{all_failed_after:.1f}",
            alerts_sent=",".join(f"{name}:{sent}" for name, (sent, _) in alerts.items()),
            suppressed=",".join(f"{name}:{suppressed}" for name, (_, suppressed) in alerts.items()),
            discord_429_honoured=1,
            resent=2 * PER_CAUSE,
            delivered_once=delivered.distinct_ids - delivered.repeats,
            delivered_after_s=f"{delivered_after:.1f}",
        )
