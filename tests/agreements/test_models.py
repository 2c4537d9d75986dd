"""The status graphs: every allowed move works, every other move is refused and changes nothing."""

from __future__ import annotations

import itertools

import pytest
from django.db import DatabaseError, connection

from agreements.models import Agreement, AgreementPayment, WebhookDelivery
from agreements.services.agreements import agreement_transition, payment_cancel
from config.states import IllegalTransition
from tests.agreements.factories import AgreementFactory, AgreementPaymentFactory

pytestmark = pytest.mark.django_db

S = Agreement.Status
ALLOWED = {
    (S.DRAFT, S.BEFORE_PROGRESS),
    (S.DRAFT, S.CANCELLED),
    (S.BEFORE_PROGRESS, S.IN_PROGRESS),
    (S.BEFORE_PROGRESS, S.CANCELLED),
    (S.IN_PROGRESS, S.OVERDUE),
    (S.IN_PROGRESS, S.COMPLETED),
    (S.IN_PROGRESS, S.CANCELLED),
    (S.OVERDUE, S.COMPLETED),
    (S.OVERDUE, S.CANCELLED),
}


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_moves(current: str, target: str) -> None:
    # given
    agreement = AgreementFactory.create(status=current)
    # when
    agreement_transition(agreement_id=agreement.id, target=target)
    # then
    agreement.refresh_from_db()
    assert agreement.status == target


@pytest.mark.parametrize(
    ("current", "target"), sorted(set(itertools.product(S.values, S.values)) - {(str(a), str(b)) for a, b in ALLOWED})
)
def test_every_other_move_is_refused_and_writes_nothing(current: str, target: str) -> None:
    # given
    agreement = AgreementFactory.create(status=current)
    # when / then
    with pytest.raises(IllegalTransition, match=f"from {current} to {target}"):
        agreement_transition(agreement_id=agreement.id, target=target)
    agreement.refresh_from_db()
    assert agreement.status == current
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    ("current", "target", "body_type", "event_type"),
    [
        (S.DRAFT, S.BEFORE_PROGRESS, "moneyGuard.createIOU", None),
        (S.BEFORE_PROGRESS, S.IN_PROGRESS, "moneyGuard.createIOU", None),
        (S.IN_PROGRESS, S.OVERDUE, "moneyGuard.createIOU", None),
        (S.IN_PROGRESS, S.COMPLETED, "moneyGuard.updateIOUData", "COMPLETED"),
        (S.OVERDUE, S.CANCELLED, "moneyGuard.updateIOUData", "CANCELLED"),
    ],
)
def test_announced_moves_write_their_delivery_in_the_same_transaction(
    current: str, target: str, body_type: str, event_type: str | None
) -> None:
    # given
    agreement = AgreementFactory.create(status=current)
    # when
    agreement_transition(agreement_id=agreement.id, target=target)
    # then exactly one outbox row with the blockchain service's body
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.event_type == f"agreement.{target.lower()}"
    assert delivery.payload["type"] == body_type
    assert delivery.payload["data"]["agreement_id"] == str(agreement.id)
    if event_type is None:
        assert delivery.payload["data"] == {
            "agreement_id": str(agreement.id),
            "amount": "10000.00",
            "interest_rate": "4.5000",
            "interest_payment_date": "2026-06-01",
            "repayment_start_date": "2026-01-01",
            "repayment_end_date": "2027-01-01",
            "pdf_file_url": "https://docs.example.com/agreement.pdf",
            "creditor_id": str(agreement.creditor_id),
            "debtor_id": str(agreement.debtor_id),
        }
    else:
        assert delivery.payload["data"] == {"agreement_id": str(agreement.id), "event_type": event_type}


def test_cancelling_a_draft_announces_nothing() -> None:
    # given
    agreement = AgreementFactory.create(status=S.DRAFT)
    # when
    agreement_transition(agreement_id=agreement.id, target=S.CANCELLED)
    # then
    assert not WebhookDelivery.objects.exists()


def test_when_the_outbox_write_fails_the_status_change_is_rolled_back() -> None:
    # given an agreement, and a database that refuses new outbox rows (a trigger)
    agreement = AgreementFactory.create(status=S.DRAFT)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_delivery() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'outbox down'; END $$"
            " LANGUAGE plpgsql;"
            "CREATE TRIGGER refuse_delivery BEFORE INSERT ON agreement_webhook_deliveries"
            " FOR EACH ROW EXECUTE FUNCTION refuse_delivery();"
        )
    # when
    with pytest.raises(DatabaseError, match="outbox down"):
        agreement_transition(agreement_id=agreement.id, target=S.BEFORE_PROGRESS)
    # then neither the status change nor the delivery exists
    assert Agreement.objects.get(id=agreement.id).status == S.DRAFT
    assert not WebhookDelivery.objects.exists()


def test_payment_cancel_is_announced_and_a_second_cancel_is_refused() -> None:
    # given
    payment = AgreementPaymentFactory.create(agreement=AgreementFactory.create(status=S.IN_PROGRESS))
    # when
    payment_cancel(payment_id=payment.id, reason="debtor paid early")
    # then
    payment.refresh_from_db()
    assert payment.status == AgreementPayment.Status.CANCELLED
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "payment.cancelled"
    assert delivery.payload["type"] == "moneyGuard.createIOU"
    with pytest.raises(IllegalTransition):
        payment_cancel(payment_id=payment.id)
    assert WebhookDelivery.objects.count() == 1
