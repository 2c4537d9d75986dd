"""Reads for the agreements API and admin (querysets with their joins and filters)."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from agreements.models import (
    Agreement,
    AgreementBlockchainLog,
    AgreementPayment,
    InboundBlockchainEvent,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)


def parse_id(raw: str) -> UUID:
    """A UUID from a URL segment; anything malformed is a 404, never a 500."""
    try:
        return UUID(str(raw))
    except ValueError:
        raise Http404("No such object.") from None


def agreement_get(raw_id: str) -> Agreement:
    try:
        return Agreement.objects.get(id=parse_id(raw_id))
    except Agreement.DoesNotExist:
        raise Http404("No such agreement.") from None


def agreement_list(*, status: str | None = None) -> QuerySet[Agreement]:
    queryset = Agreement.objects.order_by("-created_at", "id")
    return queryset.filter(status=status) if status else queryset


def payment_list(*, agreement_id: UUID) -> QuerySet[AgreementPayment]:
    return AgreementPayment.objects.filter(agreement_id=agreement_id).order_by("due_date", "created_at", "id")


def payment_get(*, agreement_id: UUID, raw_id: str) -> AgreementPayment:
    try:
        return AgreementPayment.objects.get(agreement_id=agreement_id, id=parse_id(raw_id))
    except AgreementPayment.DoesNotExist:
        raise Http404("No such payment.") from None


def blockchain_log_list(*, agreement_id: UUID) -> QuerySet[AgreementBlockchainLog]:
    return AgreementBlockchainLog.objects.filter(agreement_id=agreement_id).order_by("tx_block_number", "created_at")


def delivery_list(*, status: str | None = None, agreement_id: UUID | None = None) -> QuerySet[WebhookDelivery]:
    queryset = WebhookDelivery.objects.order_by("-created_at", "id").prefetch_related(
        Prefetch("attempts", queryset=WebhookDeliveryAttempt.objects.order_by("attempted_at", "id"))
    )
    if status:
        queryset = queryset.filter(status=status)
    if agreement_id:
        queryset = queryset.filter(agreement_id=agreement_id)
    return queryset


def delivery_get(raw_id: str) -> WebhookDelivery:
    try:
        return delivery_list().get(id=parse_id(raw_id))
    except WebhookDelivery.DoesNotExist:
        raise Http404("No such delivery.") from None


def inbound_event_list(*, status: str | None = None) -> QuerySet[InboundBlockchainEvent]:
    queryset = InboundBlockchainEvent.objects.order_by("-received_at", "id")
    return queryset.filter(status=status) if status else queryset
