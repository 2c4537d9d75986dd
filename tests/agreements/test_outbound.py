"""Outbound webhooks end to end: real worker, real Redis, a local receiver that verifies signatures.

The receiver checks every request against the public key with its own implementation of the
documented scheme, and answers from a script (500, 429 + Retry-After, stall, dropped connection).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from uuid import UUID

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from agreements.models import Agreement, WebhookDelivery
from agreements.services.agreements import agreement_transition
from agreements.tasks import deliver_webhook_task, sweep_webhook_deliveries_task
from tests.agreements.conftest import Application
from tests.agreements.factories import AgreementFactory
from tests.agreements.servers import DiscordServer, Receiver, Reply, closed_port_url, field_of
from tests.fixtures.waiting import wait_for
from tests.fixtures.workers import wait_until_idle

pytestmark = pytest.mark.usefixtures("celery_worker", "wired")


def _announce(status: str = Agreement.Status.DRAFT, target: str = Agreement.Status.BEFORE_PROGRESS) -> UUID:
    agreement = AgreementFactory.create(status=status)
    agreement_transition(agreement_id=agreement.id, target=target)
    return WebhookDelivery.objects.get(agreement=agreement).id


def _finished(delivery_id: UUID) -> WebhookDelivery | None:
    delivery = WebhookDelivery.objects.get(id=delivery_id)
    return delivery if delivery.status != WebhookDelivery.Status.PENDING else None


def test_a_delivery_arrives_signed_with_the_blockchain_service_body(receiver: Receiver) -> None:
    # when an agreement enters IN_PROGRESS
    delivery_id = _announce(Agreement.Status.BEFORE_PROGRESS, Agreement.Status.IN_PROGRESS)
    wait_for(lambda: _finished(delivery_id))
    # then the receiver verified one request with the full agreement
    [request] = receiver.for_delivery(delivery_id)
    assert request.verified
    assert request.headers["content-type"] == "application/json"
    assert request.json["type"] == "moneyGuard.createIOU"
    assert set(request.json["data"]) == {
        "agreement_id",
        "amount",
        "interest_rate",
        "interest_payment_date",
        "repayment_start_date",
        "repayment_end_date",
        "pdf_file_url",
        "creditor_id",
        "debtor_id",
    }
    delivery = WebhookDelivery.objects.get(id=delivery_id)
    assert delivery.status == WebhookDelivery.Status.SUCCESS
    assert delivery.attempt_count == 1


def test_transient_failures_end_in_success_with_every_attempt_recorded(receiver: Receiver) -> None:
    # given a receiver that fails three ways before accepting
    receiver.script.extend([Reply(status=500), Reply(drop=True), Reply(stall=2.0)])
    # when
    delivery_id = _announce()
    wait_for(lambda: _finished(delivery_id), timeout=30)
    # then
    delivery = WebhookDelivery.objects.get(id=delivery_id)
    assert delivery.status == WebhookDelivery.Status.SUCCESS
    attempts = list(delivery.attempts.order_by("attempted_at"))
    assert [a.response_status for a in attempts] == [500, None, None, 200]
    assert [a.succeeded for a in attempts] == [False, False, False, True]
    assert attempts[0].error == "HTTP 500"
    assert attempts[1].error.startswith("connection error")
    assert attempts[2].error.startswith("timeout")
    assert attempts[3].response_body == '{"ok":true}'
    assert all(a.duration_ms >= 0 for a in attempts)
    assert attempts[2].duration_ms >= 900  # waited for the 1 s timeout
    # the same webhook-id on every try, each one signed and verified
    requests = receiver.for_delivery(delivery_id)
    assert len(requests) == 4
    assert all(r.verified for r in requests)
    assert {r.body for r in requests} == {requests[0].body}
    # recorded headers carry the id and timestamp but never the signature
    for attempt in attempts:
        assert attempt.request_headers["webhook-id"] == str(delivery_id)
        assert "webhook-signature" not in attempt.request_headers
        assert "v1-rsa-pss" not in json.dumps(attempt.request_headers)


def test_retry_after_is_honoured_on_429(receiver: Receiver) -> None:
    # given a receiver that asks us to come back in 2 seconds (backoff alone would be ~0.05 s)
    receiver.script.append(Reply(status=429, headers=(("Retry-After", "2"),)))
    # when
    delivery_id = _announce()
    wait_for(lambda: _finished(delivery_id), timeout=30)
    # then
    first, second = receiver.for_delivery(delivery_id)
    assert second.at - first.at >= 1.9
    assert WebhookDelivery.objects.get(id=delivery_id).status == WebhookDelivery.Status.SUCCESS


def test_four_failed_tries_end_failed_with_exactly_one_discord_alert(
    receiver: Receiver, discord: DiscordServer, caplog: pytest.LogCaptureFixture, application: Application
) -> None:
    # given a receiver that always fails
    caplog.set_level(logging.DEBUG)
    receiver.default = Reply(status=500, body=b'{"error":"boom"}')
    # when
    delivery_id = _announce(Agreement.Status.IN_PROGRESS, Agreement.Status.COMPLETED)
    wait_for(lambda: _finished(delivery_id), timeout=30)
    wait_for(lambda: discord.messages, timeout=10)
    # then: FAILED after 1 try + 3 retries, each recorded
    delivery = WebhookDelivery.objects.get(id=delivery_id)
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempt_count == 4
    assert delivery.attempts.count() == 4
    assert list(delivery.attempts.values_list("response_body", flat=True)) == ['{"error":"boom"}'] * 4
    assert len(receiver.for_delivery(delivery_id)) == 4
    # exactly one alert, naming the agreement, the event and the last error, mentioning nobody
    [alert] = discord.messages
    assert alert["allowed_mentions"] == {"parse": []}
    [embed] = alert["embeds"]
    assert field_of(embed, "Agreement") == str(delivery.agreement_id)
    assert field_of(embed, "Event") == "agreement.completed"
    assert field_of(embed, "Last error") == "HTTP 500"
    # and nothing more arrives afterwards
    receiver_count = len(receiver.requests)
    wait_until_idle()
    deliver_webhook_task.delay(str(delivery_id)).get(timeout=10)  # a stray message changes nothing
    assert len(receiver.requests) == receiver_count
    assert len(discord.messages) == 1
    # no secret in any log line: neither the private key nor a signature sent
    signatures = [r.headers["webhook-signature"].split(",", 1)[1] for r in receiver.for_delivery(delivery_id)]
    key_body = application.private_pem.splitlines()[1]
    assert key_body not in caplog.text
    assert not any(signature in caplog.text for signature in signatures)
    assert "secret-token" not in caplog.text  # the Discord URL is a secret too
    assert f"delivery_id={delivery_id}" in caplog.text  # the logs are there, just clean


def test_410_stops_retrying_at_once(receiver: Receiver, discord: DiscordServer) -> None:
    # given
    receiver.default = Reply(status=410)
    # when
    delivery_id = _announce()
    wait_for(lambda: _finished(delivery_id))
    wait_for(lambda: discord.messages, timeout=10)
    # then
    delivery = WebhookDelivery.objects.get(id=delivery_id)
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempt_count == 1
    assert "endpoint gone" in delivery.last_error
    assert field_of(discord.messages[0]["embeds"][0], "Last error").startswith("HTTP 410")


def test_alerts_are_rate_limited_per_cause_and_discord_429_is_retried(
    receiver: Receiver, discord: DiscordServer
) -> None:
    # given a receiver that always fails, and Discord rate-limiting our first post
    receiver.default = Reply(status=500)
    discord.script.append(Reply(status=429, body=b'{"message":"rate limited","retry_after":0.3,"global":false}'))
    # when two deliveries fail for the same cause
    first = _announce()
    wait_for(lambda: _finished(first), timeout=30)
    second = _announce()
    wait_for(lambda: _finished(second), timeout=30)
    # then Discord was asked twice (429 then accepted) for the first failure, never for the second
    wait_for(lambda: discord.accepted, timeout=10)
    assert len(discord.messages) == 2
    assert len(discord.accepted) == 1
    assert field_of(discord.accepted[0]["embeds"][0], "Delivery") == str(first)


def test_an_alert_failure_never_fails_the_task(receiver: Receiver, settings: Settings) -> None:
    # given Discord is unreachable and a delivery is on its last try
    settings.DISCORD_WEBHOOK_URL = closed_port_url()
    receiver.default = Reply(status=503)
    agreement = AgreementFactory.create(status=Agreement.Status.BEFORE_PROGRESS)
    delivery = WebhookDelivery.objects.create(
        agreement=agreement, event_type="agreement.in_progress", payload={"type": "x"}, attempt_count=3
    )
    # when the task runs (in this thread)
    outcome = deliver_webhook_task(str(delivery.id))
    # then it returned normally and the delivery is FAILED
    assert outcome == WebhookDelivery.Status.FAILED
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED


def test_operator_resend_uses_the_same_id_and_records_new_attempts(receiver: Receiver, api_client: APIClient) -> None:
    # given a delivery that failed
    receiver.default = Reply(status=500)
    delivery_id = _announce()
    wait_for(lambda: _finished(delivery_id), timeout=30)
    # when the receiver recovers and an operator resends it through the API
    receiver.default = Reply(status=200)
    response = api_client.post(f"/api/v1/webhook-deliveries/{delivery_id}/resend/")
    assert response.status_code == 202
    wait_for(lambda: _finished(delivery_id), timeout=30)
    # then
    delivery = WebhookDelivery.objects.get(id=delivery_id)
    assert delivery.status == WebhookDelivery.Status.SUCCESS
    assert delivery.attempts.count() == 5
    assert {r.headers["webhook-id"] for r in receiver.for_delivery(delivery_id)} == {str(delivery_id)}


def test_the_sweeper_sends_deliveries_the_broker_lost(receiver: Receiver, settings: Settings) -> None:
    # given two outbox rows whose messages never reached the broker: one overdue, one fresh
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 60
    agreement = AgreementFactory.create(status=Agreement.Status.BEFORE_PROGRESS)
    overdue = WebhookDelivery.objects.create(
        agreement=agreement,
        event_type="agreement.before_progress",
        payload={"type": "moneyGuard.createIOU", "timestamp": 1, "data": {}},
        next_attempt_at=timezone.now() - timedelta(minutes=5),
    )
    fresh = WebhookDelivery.objects.create(agreement=agreement, event_type="agreement.in_progress", payload={})
    # when the periodic sweeper runs
    swept = sweep_webhook_deliveries_task()
    # then only the overdue one is sent
    assert swept == {"deliveries": 1, "inbound_events": 0, "owed_alerts": 0}
    wait_for(lambda: _finished(overdue.id))
    assert WebhookDelivery.objects.get(id=overdue.id).status == WebhookDelivery.Status.SUCCESS
    assert WebhookDelivery.objects.get(id=fresh.id).status == WebhookDelivery.Status.PENDING
    assert receiver.distinct_ids() == {str(overdue.id)}


def test_only_2xx_is_success_redirects_are_not_followed(receiver: Receiver) -> None:
    # given a receiver that first redirects elsewhere
    receiver.script.append(Reply(status=302, headers=(("Location", "http://127.0.0.1:9/elsewhere"),)))
    # when
    delivery_id = _announce()
    wait_for(lambda: _finished(delivery_id))
    # then the redirect counted as a failed try, and the retry succeeded at the same URL
    delivery = WebhookDelivery.objects.get(id=delivery_id)
    assert list(delivery.attempts.values_list("response_status", flat=True)) == [302, 200]
    assert len(receiver.for_delivery(delivery_id)) == 2
