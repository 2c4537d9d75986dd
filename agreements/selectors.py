"""Reads for the agreements API and admin (querysets with their joins and filters).

A `_get` raises `config.errors.NotFound` for an unknown or malformed id (a 404, never a 500).
"""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from django.db.models import Model, Prefetch, QuerySet

from agreements.models import (
    Agreement,
    AgreementBlockchainLog,
    AgreementPayment,
    InboundBlockchainEvent,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)
from config.errors import NotFound, parse_id

M = TypeVar("M", bound=Model)


def locked_get(model: type[M], row_id: UUID, *, what: str) -> M:
    """The row locked until the caller's transaction ends (`select_for_update`), else `NotFound`."""
    row = model._default_manager.select_for_update().filter(id=row_id).first()
    if row is None:
        raise NotFound(f"{what} not found")
    return row


def agreement_get(raw_id: str | UUID) -> Agreement:
    agreement = Agreement.objects.filter(id=parse_id(raw_id, what="agreement")).first()
    if agreement is None:
        raise NotFound("agreement not found")
    return agreement


def agreement_list(*, status: str | None = None) -> QuerySet[Agreement]:
    queryset = Agreement.objects.order_by("-created_at", "id")
    return queryset.filter(status=status) if status else queryset


def payment_list(*, agreement_id: UUID) -> QuerySet[AgreementPayment]:
    return AgreementPayment.objects.filter(agreement_id=agreement_id).order_by("due_date", "created_at", "id")


def payment_get(*, agreement_id: UUID, raw_id: str | UUID) -> AgreementPayment:
    payment = AgreementPayment.objects.filter(agreement_id=agreement_id, id=parse_id(raw_id, what="payment")).first()
    if payment is None:
        raise NotFound("payment not found")
    return payment


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


def delivery_get(raw_id: str | UUID) -> WebhookDelivery:
    delivery = delivery_list().filter(id=parse_id(raw_id, what="webhook delivery")).first()
    if delivery is None:
        raise NotFound("webhook delivery not found")
    return delivery


def inbound_event_list(*, status: str | None = None) -> QuerySet[InboundBlockchainEvent]:
    queryset = InboundBlockchainEvent.objects.order_by("-received_at", "id")
    return queryset.filter(status=status) if status else queryset
