"""Agreements (IOUs), their payments and on-chain log, and the webhook outbox in both directions.

Every status column moves only as its model's `MOVES` (a `config.states.StateMachine`) allows, through
the model's `transition` / `mark_<state>()` methods (or `MOVES.claim` for many rows at once).

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
from typing import ClassVar

from django.db import models
from django.utils import timezone

from config.states import StateMachine


class Agreement(models.Model):
    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        BEFORE_PROGRESS = "BEFORE_PROGRESS", "Before progress"
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        OVERDUE = "OVERDUE", "Overdue"
        COMPLETED = "COMPLETED", "Completed"
        CANCELLED = "CANCELLED", "Cancelled"

    # The explicit graph: anything not listed here is refused.
    MOVES: ClassVar[StateMachine] = StateMachine(
        "status",
        {
            Status.DRAFT: {Status.BEFORE_PROGRESS, Status.CANCELLED},
            Status.BEFORE_PROGRESS: {Status.IN_PROGRESS, Status.CANCELLED},
            Status.IN_PROGRESS: {Status.OVERDUE, Status.COMPLETED, Status.CANCELLED},
            Status.OVERDUE: {Status.COMPLETED, Status.CANCELLED},
            Status.COMPLETED: set(),
            Status.CANCELLED: set(),
        },
    )
    # Statuses announced to the blockchain service with the full agreement (creation and progress).
    ANNOUNCED_WITH_DETAILS = frozenset({Status.BEFORE_PROGRESS, Status.IN_PROGRESS, Status.OVERDUE})
    # The loan's terms: what the API, the admin and the service show and let an operator edit (with
    # the parties) while the agreement is a draft. Declared once, here.
    TERMS: ClassVar[tuple[str, ...]] = (
        "amount",
        "currency",
        "decimals",
        "interest_rate",
        "interest_payment_date",
        "repayment_start_date",
        "repayment_end_date",
        "document_url",
    )
    PARTIES: ClassVar[tuple[str, ...]] = ("creditor_id", "debtor_id")

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

    def transition(self, target: str, *, now: datetime | None = None) -> None:
        """Move to `target` (any status the graph allows: the operator picks it) and save, stamping
        `status_changed_at`; raises `IllegalTransition` for any other move."""
        now = now or timezone.now()
        self.MOVES.move(self, target, status_changed_at=now, updated_at=now)

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT


class AgreementPayment(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "SCHEDULED", "Scheduled"
        PAID = "PAID", "Paid"
        CANCELLED = "CANCELLED", "Cancelled"

    MOVES: ClassVar[StateMachine] = StateMachine(
        "status", {Status.SCHEDULED: {Status.PAID, Status.CANCELLED}, Status.PAID: set(), Status.CANCELLED: set()}
    )

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

    def mark_cancelled(self, *, reason: str, now: datetime | None = None) -> None:
        self.MOVES.move(self, self.Status.CANCELLED, cancelled_at=now or timezone.now(), cancel_reason=reason)

    def mark_paid(self, *, now: datetime | None = None) -> None:
        self.MOVES.move(self, self.Status.PAID, paid_at=now or timezone.now())


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

    # FAILED (gave up) and SUCCESS go back to PENDING only for an operator's resend: a fresh round.
    # The failure and resend moves are the outbox's (`agreements.outbox.Outbox`).
    MOVES: ClassVar[StateMachine] = StateMachine(
        "status",
        {
            Status.PENDING: {Status.SUCCESS, Status.FAILED},
            Status.SUCCESS: {Status.PENDING},
            Status.FAILED: {Status.PENDING},
        },
    )

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
    # Set when the row gives up (ends FAILED), in that transaction: its Discord alert is owed from then.
    # A sender claims it by moving it `outbox.ALERT_HOLD` ahead and clears it once the alert is handled,
    # so a worker dying in between leaves it owed and the sweeper sends it (`agreements.outbox`).
    alert_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Set while its final alert is still to be sent."
    )

    class Meta:
        db_table = "agreement_webhook_deliveries"
        verbose_name_plural = "webhook deliveries"  # not Django's "deliverys" (admin, the sweeper's log line)
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["status", "completed_at"], name="webhook_delivery_done"),
            models.Index(
                fields=["alert_due_at"],
                condition=models.Q(alert_due_at__isnull=False),
                name="webhook_delivery_alert_owed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id} ({self.status})"

    def mark_success(self, *, now: datetime) -> None:
        """Delivered: the try counts, the lease is released (call it on the locked row)."""
        self.MOVES.move(
            self,
            self.Status.SUCCESS,
            attempt_count=self.attempt_count + 1,
            last_error="",
            completed_at=now,
            locked_until=None,
        )


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

    # FAILED (gave up) goes back to RECEIVED only for an operator's reprocess: a fresh round.
    # The failure and reprocess moves are the outbox's (`agreements.outbox.Outbox`).
    MOVES: ClassVar[StateMachine] = StateMachine(
        "status",
        {
            Status.RECEIVED: {Status.PROCESSED, Status.FAILED},
            Status.PROCESSED: set(),
            Status.FAILED: {Status.RECEIVED},
        },
    )

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
    # Its Discord alert still owed after it gave up, as `WebhookDelivery.alert_due_at`.
    alert_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Set while its final alert is still to be sent."
    )

    class Meta:
        db_table = "agreement_inbound_blockchain_events"
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="inbound_event_due"),
            models.Index(
                fields=["alert_due_at"],
                condition=models.Q(alert_due_at__isnull=False),
                name="inbound_event_alert_owed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.tx_hash} ({self.status})"

    def mark_processed(self, *, now: datetime) -> None:
        """Applied: the try counts (call it on the locked row)."""
        self.MOVES.move(
            self, self.Status.PROCESSED, processed_at=now, attempt_count=self.attempt_count + 1, last_error=""
        )
