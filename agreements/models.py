"""Agreements (IOUs), their payments and on-chain log, and the webhook outbox in both directions.

- `Agreement`: a loan between a creditor and a debtor, with an explicit status graph and the
  on-chain fields set when the blockchain service reports the IOU issued.
- `AgreementPayment`: a scheduled repayment; an operator may cancel it.
- `AgreementBlockchainLog` (table `agreement_blockchain_logs`): one row per on-chain transaction
  the blockchain service reported (unique `tx_hash`).
- `WebhookDelivery` / `WebhookDeliveryAttempt`: the outbound outbox. A delivery is written in the
  same transaction as the change it announces; every HTTP try is an attempt row.
- `InboundBlockchainEvent`: a verified webhook received from the blockchain service, stored before
  it is processed (unique by `webhook-id` and by `tx_hash`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import models
from django.utils import timezone


class IllegalTransitionError(Exception):
    """A status change that the graph does not allow (the API answers 409)."""

    def __init__(self, entity: str, current: str, target: str) -> None:
        super().__init__(f"{entity} cannot go from {current} to {target}.")
        self.current = current
        self.target = target


class Agreement(models.Model):
    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        BEFORE_PROGRESS = "BEFORE_PROGRESS", "Before progress"
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        OVERDUE = "OVERDUE", "Overdue"
        COMPLETED = "COMPLETED", "Completed"
        CANCELLED = "CANCELLED", "Cancelled"

    # The explicit graph: anything not listed here is refused.
    ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
        Status.DRAFT: frozenset({Status.BEFORE_PROGRESS, Status.CANCELLED}),
        Status.BEFORE_PROGRESS: frozenset({Status.IN_PROGRESS, Status.CANCELLED}),
        Status.IN_PROGRESS: frozenset({Status.OVERDUE, Status.COMPLETED, Status.CANCELLED}),
        Status.OVERDUE: frozenset({Status.COMPLETED, Status.CANCELLED}),
        Status.COMPLETED: frozenset(),
        Status.CANCELLED: frozenset(),
    }
    # Statuses announced to the blockchain service with the full agreement (creation and progress).
    ANNOUNCED_WITH_DETAILS = frozenset({Status.BEFORE_PROGRESS, Status.IN_PROGRESS, Status.OVERDUE})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    creditor_id = models.UUIDField()
    debtor_id = models.UUIDField()
    # Base units of `currency` (e.g. cents when `decimals` is 2); never a float.
    amount = models.DecimalField(max_digits=78, decimal_places=0)
    currency = models.CharField(max_length=16)
    decimals = models.PositiveSmallIntegerField(default=2)
    interest_rate = models.DecimalField(max_digits=9, decimal_places=4, help_text="Percent per year.")
    interest_payment_date = models.DateField(null=True, blank=True)
    repayment_start_date = models.DateField()
    repayment_end_date = models.DateField()
    document_url = models.URLField(max_length=1000, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # On-chain state, set by the blockchain service's CREATE webhook.
    tx_hash = models.CharField(max_length=80, blank=True)
    tx_block_number = models.BigIntegerField(null=True, blank=True)
    tx_block_timestamp = models.DateTimeField(null=True, blank=True)
    contract_address = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "agreements"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="agreement_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(repayment_end_date__gte=models.F("repayment_start_date")),
                name="agreement_repayment_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"Agreement {self.id} ({self.status})"

    def can_transition_to(self, target: str) -> bool:
        return target in self.ALLOWED_TRANSITIONS.get(self.status, frozenset())

    def transition_to(self, target: str, *, now: datetime | None = None) -> list[str]:
        """Move to `target` or raise `IllegalTransitionError`; returns the fields to save."""
        if not self.can_transition_to(target):
            raise IllegalTransitionError("Agreement", self.status, target)
        self.status = target
        self.status_changed_at = now or timezone.now()
        return ["status", "status_changed_at", "updated_at"]

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT


class AgreementPayment(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "SCHEDULED", "Scheduled"
        PAID = "PAID", "Paid"
        CANCELLED = "CANCELLED", "Cancelled"

    ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
        Status.SCHEDULED: frozenset({Status.PAID, Status.CANCELLED}),
        Status.PAID: frozenset(),
        Status.CANCELLED: frozenset(),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="payments")
    due_date = models.DateField()
    amount = models.DecimalField(max_digits=78, decimal_places=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "agreement_payments"
        ordering = ["due_date", "created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="agreement_payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Payment {self.id} ({self.status})"

    def _move(self, target: str) -> None:
        if target not in self.ALLOWED_TRANSITIONS.get(self.status, frozenset()):
            raise IllegalTransitionError("Payment", self.status, target)
        self.status = target

    def cancel(self, *, reason: str, now: datetime | None = None) -> list[str]:
        self._move(self.Status.CANCELLED)
        self.cancelled_at = now or timezone.now()
        self.cancel_reason = reason
        return ["status", "cancelled_at", "cancel_reason"]

    def mark_paid(self, *, now: datetime | None = None) -> list[str]:
        self._move(self.Status.PAID)
        self.paid_at = now or timezone.now()
        return ["status", "paid_at"]


class AgreementBlockchainLog(models.Model):
    class EventType(models.TextChoices):
        ISSUED = "issued", "Issued"
        INITIALIZED = "initialized", "Initialized"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=16, choices=EventType.choices)
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="blockchain_logs")
    tx_hash = models.CharField(max_length=80, unique=True)
    tx_block_number = models.BigIntegerField()
    tx_block_timestamp = models.DateTimeField()
    contract_address = models.CharField(max_length=80)
    data = models.JSONField(default=dict)  # JSONB on PostgreSQL
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "agreement_blockchain_logs"
        ordering = ["tx_block_number", "created_at"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.tx_hash}"


class WebhookDelivery(models.Model):
    """One outbound webhook (the outbox row). Its id is the `webhook-id` header, stable across tries."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SUCCESS = "SUCCESS", "Success"
        FAILED = "FAILED", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="webhook_deliveries")
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0, help_text="Tries in the current round.")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker holds the delivery until this time while it sends (claimed by conditional UPDATE).
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agreement_webhook_deliveries"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["status", "completed_at"], name="webhook_delivery_done"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id} ({self.status})"


class WebhookDeliveryAttempt(models.Model):
    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    url = models.URLField(max_length=1000)
    # Headers as sent, minus the signature (nothing secret is kept).
    request_headers = models.JSONField(default=dict)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="Truncated.")
    duration_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        db_table = "agreement_webhook_delivery_attempts"
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"attempt {self.id} of {self.delivery_id}"


class InboundBlockchainEvent(models.Model):
    """A verified webhook from the blockchain service, stored before it is processed."""

    class Type(models.TextChoices):
        CREATE = "CREATE", "Create"
        INIT_DATA = "INIT_DATA", "Init data"
        UPDATE = "UPDATE", "Update"

    class Status(models.TextChoices):
        RECEIVED = "RECEIVED", "Received"
        PROCESSED = "PROCESSED", "Processed"
        FAILED = "FAILED", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook_id = models.CharField(max_length=255, unique=True)
    body_sha256 = models.CharField(max_length=64)
    type = models.CharField(max_length=12, choices=Type.choices)
    # A plain id, not a foreign key: the event is kept even if the agreement goes away.
    agreement_id = models.UUIDField(db_index=True)
    tx_hash = models.CharField(max_length=80, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agreement_inbound_blockchain_events"
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="inbound_event_due")]

    def __str__(self) -> str:
        return f"{self.type} {self.tx_hash} ({self.status})"
