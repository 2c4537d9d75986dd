"""Agreement and payment services: create, edit, transition, cancel; each writes its outbox row.

Every status change that the blockchain service must hear about writes a `WebhookDelivery` in the
same transaction; the delivery task is enqueued after commit (and the sweeper catches what the
broker lost).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from agreements.models import Agreement, AgreementPayment
from agreements.payloads import agreement_event_body
from agreements.selectors import locked_get
from agreements.services.outbound import webhook_delivery_create
from config.errors import Conflict, InvalidInput, NotFound
from config.states import IllegalTransition

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = frozenset(Agreement.PARTIES + Agreement.TERMS)


def agreement_create(
    *,
    creditor_id: UUID,
    debtor_id: UUID,
    amount: int,
    currency: str,
    decimals: int,
    interest_rate: Decimal,
    repayment_start_date: date,
    repayment_end_date: date,
    interest_payment_date: date | None = None,
    document_url: str = "",
) -> Agreement:
    """A new agreement in DRAFT (nothing is announced until it leaves DRAFT)."""
    with transaction.atomic():
        agreement = Agreement.objects.create(
            creditor_id=creditor_id,
            debtor_id=debtor_id,
            amount=amount,
            currency=currency,
            decimals=decimals,
            interest_rate=interest_rate,
            interest_payment_date=interest_payment_date,
            repayment_start_date=repayment_start_date,
            repayment_end_date=repayment_end_date,
            document_url=document_url,
        )
    logger.info("agreement created agreement_id=%s", agreement.id)
    return agreement


def agreement_update(*, agreement_id: UUID, changes: dict[str, Any]) -> Agreement:
    """Edit a DRAFT agreement's terms; once announced, terms are frozen (IllegalTransition)."""
    unknown = sorted(set(changes) - EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(unknown[0], f"not editable: {', '.join(unknown)}")
    with transaction.atomic():
        agreement = locked_get(Agreement, agreement_id, what="agreement")
        if not agreement.is_editable:
            raise IllegalTransition("Agreement", agreement.status, "edited (only DRAFT agreements can be edited)")
        for name, value in changes.items():
            setattr(agreement, name, value)
        agreement.save(update_fields=[*changes, "updated_at"])
    return agreement


def agreement_delete(*, agreement_id: UUID) -> None:
    """Delete a DRAFT agreement (never announced, so no history to keep)."""
    with transaction.atomic():
        agreement = locked_get(Agreement, agreement_id, what="agreement")
        if not agreement.is_editable:
            raise IllegalTransition("Agreement", agreement.status, "deleted (only DRAFT agreements can be deleted)")
        try:
            agreement.delete()
        except ProtectedError as exc:
            raise Conflict("The agreement has on-chain history and cannot be deleted.") from exc
    logger.info("agreement deleted agreement_id=%s", agreement_id)


def agreement_transition(*, agreement_id: UUID, target: str, now: datetime | None = None) -> Agreement:
    """Move an agreement along its status graph and queue the webhook announcing it, atomically."""
    now = now or timezone.now()
    with transaction.atomic():
        agreement = locked_get(Agreement, agreement_id, what="agreement")
        previous = agreement.status
        agreement.transition(target, now=now)
        # A DRAFT agreement was never announced: cancelling it tells the chain nothing.
        never_announced = previous == Agreement.Status.DRAFT
        body = (
            None
            if never_announced and target == Agreement.Status.CANCELLED
            else agreement_event_body(agreement, status=target, now=now)
        )
        if body is not None:
            webhook_delivery_create(agreement=agreement, event_type=f"agreement.{target.lower()}", payload=body)
    logger.info("agreement transition agreement_id=%s from=%s to=%s", agreement.id, previous, target)
    return agreement


def agreements_mark_overdue(*, today: date | None = None, limit: int = 500) -> list[UUID]:
    """Move IN_PROGRESS agreements whose repayment ended before `today` to OVERDUE (one tx each)."""
    today = today or timezone.localdate()
    due = list(
        Agreement.objects.filter(status=Agreement.Status.IN_PROGRESS, repayment_end_date__lt=today)
        .order_by("repayment_end_date")
        .values_list("id", flat=True)[:limit]
    )
    moved: list[UUID] = []
    for agreement_id in due:
        try:
            agreement_transition(agreement_id=agreement_id, target=Agreement.Status.OVERDUE)
        except (IllegalTransition, NotFound):
            continue  # changed meanwhile: nothing to do
        except Exception:
            logger.exception("marking overdue failed agreement_id=%s", agreement_id)
            continue
        moved.append(agreement_id)
    return moved


def payment_create(*, agreement_id: UUID, due_date: date, amount: int) -> AgreementPayment:
    with transaction.atomic():
        agreement = locked_get(Agreement, agreement_id, what="agreement")
        if agreement.status in (Agreement.Status.COMPLETED, Agreement.Status.CANCELLED):
            raise IllegalTransition("Agreement", agreement.status, "given new payments")
        return AgreementPayment.objects.create(agreement=agreement, due_date=due_date, amount=amount)


def payment_mark_paid(*, payment_id: UUID) -> AgreementPayment:
    with transaction.atomic():
        payment = locked_get(AgreementPayment, payment_id, what="payment")
        payment.mark_paid()
    return payment


def payment_cancel(*, payment_id: UUID, reason: str = "") -> AgreementPayment:
    """Cancel a scheduled payment and tell the blockchain service (unless the agreement is a DRAFT)."""
    now = timezone.now()
    with transaction.atomic():
        payment = locked_get(AgreementPayment, payment_id, what="payment")
        agreement = locked_get(Agreement, payment.agreement_id, what="agreement")
        payment.mark_cancelled(reason=reason, now=now)
        body = agreement_event_body(agreement, status=agreement.status, now=now)
        if body is not None:
            webhook_delivery_create(agreement=agreement, event_type="payment.cancelled", payload=body)
    logger.info("payment cancelled payment_id=%s agreement_id=%s", payment.id, payment.agreement_id)
    return payment
