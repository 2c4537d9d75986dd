"""Agreements API: validation (400 with field messages), 404 on malformed ids, 409 on illegal moves."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from agreements.models import (
    Agreement,
    AgreementBlockchainLog,
    AgreementPayment,
    InboundBlockchainEvent,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)
from tests.agreements.factories import AgreementFactory, AgreementPaymentFactory, agreement_body

pytestmark = pytest.mark.django_db

VALID = agreement_body()


def test_anonymous_requests_are_refused(anonymous_client: APIClient) -> None:
    assert anonymous_client.get("/api/v1/agreements/").status_code == 401
    assert anonymous_client.get("/api/v1/webhook-deliveries/").status_code == 401


def test_create_stores_base_units_and_shows_units(api_client: APIClient) -> None:
    # when
    response = api_client.post("/api/v1/agreements/", VALID, format="json")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["amount"] == "1234.56"
    assert body["status"] == "DRAFT"
    assert body["allowed_transitions"] == ["BEFORE_PROGRESS", "CANCELLED"]
    assert body["on_chain"] is None
    assert Agreement.objects.get(id=body["id"]).amount == 123456
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"amount": 1234.56}, "amount", "decimal string"),
        ({"amount": "12.345"}, "amount", "At most 2 decimal places"),
        ({"amount": "-1"}, "amount", "greater than zero"),
        ({"amount": "NaN"}, "amount", "decimal string"),
        ({"creditor_id": "bob"}, "creditor_id", "valid UUID"),
        ({"currency": "€uro!"}, "currency", ""),
        ({"repayment_end_date": "2025-12-31"}, "repayment_end_date", "on or after"),
        ({"interest_rate": "-1"}, "interest_rate", ""),
        ({"document_url": "not a url"}, "document_url", "valid URL"),
        ({"decimals": 99}, "decimals", ""),
    ],
)
def test_create_refuses_bad_input_naming_the_field(
    api_client: APIClient, changes: dict[str, Any], field: str, message: str
) -> None:
    # when
    response = api_client.post("/api/v1/agreements/", VALID | changes, format="json")
    # then
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["fields"]
    assert message in str(body["fields"][field])
    assert not Agreement.objects.exists()


LARGEST = "9" * 76 + ".99"  # 10**78 - 1 cents: the most a numeric(78, 0) column holds


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param("1" + "0" * 76, id="10**78-cents"),
        pytest.param("9" * 5000, id="5000-digits"),
        pytest.param("1E+999999999", id="huge-exponent"),
    ],
)
def test_an_amount_too_large_for_the_column_is_a_400_naming_the_field(api_client: APIClient, amount: str) -> None:
    # given a draft and an agreement in progress (which takes payments)
    draft = AgreementFactory.create()
    running = AgreementFactory.create(status=Agreement.Status.IN_PROGRESS)
    # when the amount is sent on create, on edit and on a payment
    responses = [
        api_client.post("/api/v1/agreements/", VALID | {"amount": amount}, format="json"),
        api_client.patch(f"/api/v1/agreements/{draft.id}/", {"amount": amount}, format="json"),
        api_client.post(
            f"/api/v1/agreements/{running.id}/payments/", {"due_date": "2026-02-01", "amount": amount}, format="json"
        ),
    ]
    # then each is a 400 naming the field and telling the most it can be; nothing changed
    for response in responses:
        assert response.status_code == 400, response.json()
        assert list(response.json()["fields"]) == ["amount"], response.json()
        assert f"Too large: at most {LARGEST}" in response.json()["fields"]["amount"][0]
    assert Agreement.objects.count() == 2
    draft.refresh_from_db()
    assert draft.amount == 1_000_000
    assert not AgreementPayment.objects.exists()


def test_raising_decimals_past_the_column_is_a_400_naming_the_amount(api_client: APIClient) -> None:
    # given a draft whose amount fits at 2 decimals but not at 36
    draft = AgreementFactory.create(amount=10**70)
    # when
    response = api_client.patch(f"/api/v1/agreements/{draft.id}/", {"decimals": 36}, format="json")
    # then
    assert response.status_code == 400, response.json()
    assert list(response.json()["fields"]) == ["amount"]
    draft.refresh_from_db()
    assert draft.decimals == 2


def test_the_largest_amount_the_column_holds_is_accepted(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/agreements/", VALID | {"amount": LARGEST}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == LARGEST
    assert Agreement.objects.get().amount == 10**78 - 1


@pytest.mark.parametrize(
    ("amount", "stored"),
    [
        ("12345678901234567890123456789.01", 1234567890123456789012345678901),
        ("10000000000000000000000000000000.10", 1000000000000000000000000000000010),
    ],
)
def test_amounts_with_many_significant_digits_are_stored_and_shown_exactly(
    api_client: APIClient, amount: str, stored: int
) -> None:
    # when (more significant digits than Decimal's default 28)
    response = api_client.post("/api/v1/agreements/", VALID | {"amount": amount}, format="json")
    # then nothing is rounded, in either direction
    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == amount
    assert Agreement.objects.get().amount == stored


@pytest.mark.parametrize("amount", ["12345678901234567890123456789.011", "1E-999999999"])
def test_a_fraction_below_the_currency_precision_is_refused_however_far_down(
    api_client: APIClient, amount: str
) -> None:
    response = api_client.post("/api/v1/agreements/", VALID | {"amount": amount}, format="json")
    assert response.status_code == 400, response.json()
    assert "At most 2 decimal places" in response.json()["fields"]["amount"][0]
    assert not Agreement.objects.exists()


def test_missing_fields_are_all_named(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/agreements/", {}, format="json")
    assert response.status_code == 400
    assert {"creditor_id", "debtor_id", "amount", "currency", "interest_rate"} <= set(response.json()["fields"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/agreements/not-a-uuid/",
        "/api/v1/agreements/12345/transition/",
        "/api/v1/agreements/xyz/payments/",
        "/api/v1/agreements/xyz/blockchain-logs/",
        f"/api/v1/agreements/{uuid.uuid4()}/",
        "/api/v1/webhook-deliveries/nope/",
    ],
)
def test_malformed_or_unknown_ids_are_404(api_client: APIClient, path: str) -> None:
    response = api_client.get(path) if "transition" not in path else api_client.post(path, {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_payment_id_must_belong_to_the_agreement(api_client: APIClient) -> None:
    # given a payment of another agreement
    payment = AgreementPaymentFactory.create()
    other = AgreementFactory.create()
    # when / then
    assert api_client.post(f"/api/v1/agreements/{other.id}/payments/{payment.id}/cancel/").status_code == 404
    assert api_client.post(f"/api/v1/agreements/{other.id}/payments/bad/cancel/").status_code == 404


def test_list_is_paginated_and_filtered(api_client: APIClient) -> None:
    # given
    AgreementFactory.create_batch(3, status=Agreement.Status.IN_PROGRESS)
    AgreementFactory.create_batch(2)
    # when
    response = api_client.get("/api/v1/agreements/", {"status": "IN_PROGRESS", "limit": "2"})
    # then
    body = response.json()
    assert response.status_code == 200
    assert (body["total"], body["page"], body["limit"], body["total_pages"]) == (3, 1, 2, 2)
    assert len(body["items"]) == 2
    assert api_client.get("/api/v1/agreements/", {"status": "BOGUS"}).status_code == 400


def test_draft_terms_can_change_but_not_after_announcement(api_client: APIClient) -> None:
    # given
    draft = AgreementFactory.create()
    announced = AgreementFactory.create(status=Agreement.Status.BEFORE_PROGRESS)
    # when
    edited = api_client.patch(f"/api/v1/agreements/{draft.id}/", {"amount": "99.99"}, format="json")
    refused = api_client.patch(f"/api/v1/agreements/{announced.id}/", {"amount": "99.99"}, format="json")
    # then
    assert edited.status_code == 200
    assert edited.json()["amount"] == "99.99"
    assert refused.status_code == 409
    assert "only DRAFT" in refused.json()["detail"]
    announced.refresh_from_db()
    assert announced.amount == 1_000_000


def test_delete_only_drafts(api_client: APIClient) -> None:
    draft = AgreementFactory.create()
    announced = AgreementFactory.create(status=Agreement.Status.IN_PROGRESS)
    assert api_client.delete(f"/api/v1/agreements/{draft.id}/").status_code == 204
    assert api_client.delete(f"/api/v1/agreements/{announced.id}/").status_code == 409
    assert list(Agreement.objects.values_list("id", flat=True)) == [announced.id]


def test_transitions_legal_then_illegal(api_client: APIClient) -> None:
    # given
    agreement = AgreementFactory.create()
    url = f"/api/v1/agreements/{agreement.id}/transition/"
    # when
    moved = api_client.post(url, {"status": "BEFORE_PROGRESS"}, format="json")
    illegal = api_client.post(url, {"status": "COMPLETED"}, format="json")
    invalid = api_client.post(url, {"status": "FLYING"}, format="json")
    # then
    assert moved.status_code == 200
    assert moved.json()["status"] == "BEFORE_PROGRESS"
    assert illegal.status_code == 409
    assert illegal.json() == {"code": "conflict", "detail": "Agreement cannot go from BEFORE_PROGRESS to COMPLETED."}
    assert invalid.status_code == 400
    assert "status" in invalid.json()["fields"]
    assert WebhookDelivery.objects.filter(agreement=agreement).count() == 1


def test_payments_create_list_cancel(api_client: APIClient) -> None:
    # given
    agreement = AgreementFactory.create(status=Agreement.Status.IN_PROGRESS)
    base = f"/api/v1/agreements/{agreement.id}/payments/"
    # when
    created = api_client.post(base, {"due_date": "2026-02-01", "amount": "100.00"}, format="json")
    bad = api_client.post(base, {"due_date": "soon", "amount": 5}, format="json")
    payment_id = created.json()["id"]
    cancelled = api_client.post(f"{base}{payment_id}/cancel/", {"reason": "renegotiated"}, format="json")
    again = api_client.post(f"{base}{payment_id}/cancel/", {}, format="json")
    listed = api_client.get(base)
    # then
    assert created.status_code == 201
    assert created.json()["amount"] == "100.00"
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"due_date", "amount"}
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert again.status_code == 409
    assert listed.json()["total"] == 1
    assert AgreementPayment.objects.get().cancel_reason == "renegotiated"
    assert WebhookDelivery.objects.get().event_type == "payment.cancelled"


def test_blockchain_logs_per_agreement(api_client: APIClient) -> None:
    # given
    agreement = AgreementFactory.create()
    AgreementBlockchainLog.objects.create(
        event_type="issued",
        agreement=agreement,
        tx_hash="0x" + "aa" * 32,
        tx_block_number=7,
        tx_block_timestamp=timezone.now(),
        contract_address="0x" + "bb" * 20,
        data={"k": "v"},
    )
    AgreementBlockchainLog.objects.create(
        event_type="issued",
        agreement=AgreementFactory.create(),
        tx_hash="0x" + "cc" * 32,
        tx_block_number=8,
        tx_block_timestamp=timezone.now(),
        contract_address="0x" + "bb" * 20,
    )
    # when
    response = api_client.get(f"/api/v1/agreements/{agreement.id}/blockchain-logs/")
    # then
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert (item["event_type"], item["tx_hash"], item["data"]) == ("issued", "0x" + "aa" * 32, {"k": "v"})


def _failed_delivery(agreement: Agreement, *, completed_at: dt.datetime) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        agreement=agreement,
        event_type="agreement.in_progress",
        payload={"type": "moneyGuard.createIOU"},
        status=WebhookDelivery.Status.FAILED,
        attempt_count=4,
        completed_at=completed_at,
        last_error="HTTP 500",
    )
    WebhookDeliveryAttempt.objects.create(
        delivery=delivery,
        attempted_at=completed_at,
        url="http://receiver/",
        request_headers={"webhook-id": str(delivery.id)},
        response_status=500,
        response_body="boom",
        duration_ms=12,
        error="HTTP 500",
    )
    return delivery


def test_deliveries_with_attempts_filtered_by_status(api_client: APIClient) -> None:
    # given one failed and one pending delivery
    agreement = AgreementFactory.create(status=Agreement.Status.IN_PROGRESS)
    failed = _failed_delivery(agreement, completed_at=timezone.now())
    WebhookDelivery.objects.create(agreement=agreement, event_type="agreement.overdue", payload={})
    # when
    response = api_client.get("/api/v1/webhook-deliveries/", {"status": "FAILED"})
    detail = api_client.get(f"/api/v1/webhook-deliveries/{failed.id}/")
    # then
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert item["id"] == str(failed.id)
    assert [(a["response_status"], a["error"]) for a in item["attempts"]] == [(500, "HTTP 500")]
    assert detail.json()["attempts"][0]["response_body"] == "boom"
    assert api_client.get("/api/v1/webhook-deliveries/", {"status": "LOST"}).status_code == 400
    assert api_client.get("/api/v1/webhook-deliveries/", {"agreement": "x"}).status_code == 400


def test_resend_one_and_resend_failed_since(api_client: APIClient) -> None:
    # given two failed deliveries, one before and one after the cut-off, and one pending
    agreement = AgreementFactory.create(status=Agreement.Status.IN_PROGRESS)
    cutoff = timezone.now() - timedelta(hours=1)
    old = _failed_delivery(agreement, completed_at=cutoff - timedelta(minutes=1))
    recent = _failed_delivery(agreement, completed_at=cutoff + timedelta(minutes=1))
    pending = WebhookDelivery.objects.create(agreement=agreement, event_type="agreement.overdue", payload={})
    # when
    bulk = api_client.post("/api/v1/webhook-deliveries/resend-failed/", {"since": cutoff.isoformat()}, format="json")
    busy = api_client.post(f"/api/v1/webhook-deliveries/{pending.id}/resend/")
    one = api_client.post(f"/api/v1/webhook-deliveries/{old.id}/resend/")
    missing = api_client.post("/api/v1/webhook-deliveries/resend-failed/", {}, format="json")
    # then
    assert bulk.status_code == 202
    assert bulk.json() == {"resent": 1, "ids": [str(recent.id)]}
    assert busy.status_code == 409
    assert one.status_code == 202
    assert one.json()["status"] == "PENDING"
    assert one.json()["attempt_count"] == 0
    assert len(one.json()["attempts"]) == 1  # history is kept
    assert missing.status_code == 400
    assert "since" in missing.json()["fields"]


def test_inbound_events_are_listed_and_failed_ones_reprocessed(api_client: APIClient) -> None:
    # given
    event = InboundBlockchainEvent.objects.create(
        webhook_id="msg_1",
        body_sha256="0" * 64,
        type="CREATE",
        agreement_id=uuid.uuid4(),
        tx_hash="0x" + "dd" * 32,
        payload={},
        status=InboundBlockchainEvent.Status.FAILED,
        attempt_count=4,
    )
    # when
    listed = api_client.get("/api/v1/blockchain-events/", {"status": "FAILED"})
    reprocessed = api_client.post(f"/api/v1/blockchain-events/{event.id}/reprocess/")
    again = api_client.post(f"/api/v1/blockchain-events/{event.id}/reprocess/")
    # then
    assert listed.json()["total"] == 1
    assert reprocessed.status_code == 202
    assert reprocessed.json()["status"] == "RECEIVED"
    assert again.status_code == 409
    assert api_client.post("/api/v1/blockchain-events/bad/reprocess/").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "detail"),
    [
        ("get", "/api/v1/agreements/not-a-uuid/", "agreement not found"),
        ("get", f"/api/v1/agreements/{uuid.uuid4()}/", "agreement not found"),
        ("get", f"/api/v1/webhook-deliveries/{uuid.uuid4()}/", "webhook delivery not found"),
        ("post", f"/api/v1/webhook-deliveries/{uuid.uuid4()}/resend/", "webhook delivery not found"),
        ("post", "/api/v1/blockchain-events/bad/reprocess/", "blockchain event not found"),
        ("post", f"/api/v1/blockchain-events/{uuid.uuid4()}/reprocess/", "blockchain event not found"),
    ],
)
def test_unknown_ids_answer_the_common_not_found_body(
    api_client: APIClient, method: str, path: str, detail: str
) -> None:
    # when
    response = getattr(api_client, method)(path)
    # then the same body as every app's 404: a code and what was not found
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": detail}


def test_an_unknown_payment_of_a_known_agreement_answers_the_common_not_found_body(api_client: APIClient) -> None:
    # given
    agreement = AgreementFactory.create()
    # when
    response = api_client.post(f"/api/v1/agreements/{agreement.id}/payments/{uuid.uuid4()}/pay/")
    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "payment not found"}


def test_reprocessing_an_event_that_is_not_failed_is_a_409_with_the_common_body(api_client: APIClient) -> None:
    # given an event still waiting for its first processing try
    event = InboundBlockchainEvent.objects.create(
        webhook_id="msg_2",
        body_sha256="1" * 64,
        type="CREATE",
        agreement_id=uuid.uuid4(),
        tx_hash="0x" + "ee" * 32,
        payload={},
    )
    # when
    response = api_client.post(f"/api/v1/blockchain-events/{event.id}/reprocess/")
    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "conflict",
        "detail": "Only FAILED events can be reprocessed (this one is RECEIVED).",
    }
    event.refresh_from_db()
    assert event.status == InboundBlockchainEvent.Status.RECEIVED


def test_deleting_a_draft_with_on_chain_history_is_a_409_with_the_common_body(api_client: APIClient) -> None:
    # given a DRAFT agreement that already has a blockchain log
    draft = AgreementFactory.create()
    AgreementBlockchainLog.objects.create(
        event_type="issued",
        agreement=draft,
        tx_hash="0x" + "ab" * 32,
        tx_block_number=9,
        tx_block_timestamp=timezone.now(),
        contract_address="0x" + "bb" * 20,
    )
    # when
    response = api_client.delete(f"/api/v1/agreements/{draft.id}/")
    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "conflict",
        "detail": "The agreement has on-chain history and cannot be deleted.",
    }
    assert Agreement.objects.filter(id=draft.id).exists()
