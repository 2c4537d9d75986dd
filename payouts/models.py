"""Payouts data: assets, their holders, distributions, batch payouts and holder payments.

Amounts are integers in base units stored in `AmountField` (numeric(78, 0): any uint256).
Statuses are `TextChoices` with an explicit transition table; `Status.check_move(old, new)` refuses
illegal moves, both for instance transitions and for the conditional `UPDATE ... WHERE status=old`
claims the services use when two workers may race.

Scale notes (an asset may have 1,000,000 holders):
- `HolderPayment` has no foreign key to `BatchPayout`: a payment belongs to batch
  (`distribution`, `batch_number`), assigned from its position in the address-ordered snapshot,
  so payments can be streamed in with one COPY before any batch row exists.
- Every list the API or admin shows is served by an index that matches its ordering.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from chain.fields import Uint256Field


class IllegalTransition(Exception):
    """A status change the state machine does not allow."""


class _Machine(models.TextChoices):
    """TextChoices with a transition table (`_moves`, set after the class)."""

    @classmethod
    def check_move(cls, old: str, new: str) -> None:
        allowed: dict[str, set[str]] = cls._moves  # type: ignore[attr-defined]
        if new not in allowed.get(old, set()):
            raise IllegalTransition(f"{cls.__qualname__}: {old} -> {new} is not allowed")

    @classmethod
    def sources_of(cls, new: str) -> list[str]:
        allowed: dict[str, set[str]] = cls._moves  # type: ignore[attr-defined]
        return sorted(old for old, targets in allowed.items() if new in targets)


class Asset(models.Model):
    class AssetType(models.TextChoices):
        EQUITY = "EQUITY"
        BOND_VARIABLE_RATE = "BOND_VARIABLE_RATE"
        BOND_FIXED_RATE = "BOND_FIXED_RATE"
        BOND_KPI_LINKED_RATE = "BOND_KPI_LINKED_RATE"
        BOND_SPT_RATE = "BOND_SPT_RATE"

    class SyncStatus(_Machine):
        SYNCING = "SYNCING"
        SYNCED = "SYNCED"
        FAILED = "FAILED"

    class PauseState(_Machine):
        """Where the payout contract's pause stands. Only ACTIVE pays: a toggle on its way to the chain
        (PAUSING, UNPAUSING) holds every batch until the lane confirms it or it fails."""

        ACTIVE = "ACTIVE"  # unpaused on chain, confirmed
        PAUSING = "PAUSING"  # pause() handed to the lane, not yet confirmed
        PAUSED = "PAUSED"  # paused on chain, confirmed
        UNPAUSING = "UNPAUSING"  # unpause() handed to the lane, not yet confirmed

        @classmethod
        def in_flight(cls) -> frozenset[str]:
            return frozenset({cls.PAUSING, cls.UNPAUSING})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    symbol = models.CharField(max_length=32)
    token_address = models.CharField(max_length=42, unique=True)
    asset_type = models.CharField(max_length=32, choices=AssetType.choices)
    decimals = models.PositiveSmallIntegerField(default=0)
    maturity_date = models.DateField(null=True, blank=True)
    payout_contract_address = models.CharField(max_length=42, blank=True, default="")
    payment_token_address = models.CharField(max_length=42)
    payment_token_decimals = models.PositiveSmallIntegerField(default=6)
    # True unless the chain is confirmed unpaused (pause_state ACTIVE): a paused asset starts nothing
    # and sends no batch. Set together with pause_state by `move_pause`.
    is_paused = models.BooleanField(default=False)
    pause_state = models.CharField(max_length=10, choices=PauseState.choices, default=PauseState.ACTIVE)
    # Bumped on every pause/unpause so each on-chain toggle has its own idempotency key.
    pause_generation = models.PositiveIntegerField(default=0)
    # Why the last toggle did not reach the chain (the lane's error); empty once one succeeds.
    pause_error = models.TextField(blank=True, default="")
    sync_enabled = models.BooleanField(default=True)
    sync_status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.SYNCING)
    sync_started_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    sync_error = models.TextField(blank=True, default="")
    # A sync runs in chunks of PAYOUT_CHUNK_HOLDERS, one task each, every chunk read at the block the
    # first one pinned; `sync_cursor` is the holder-list position the next chunk starts at.
    sync_block = models.BigIntegerField(null=True, blank=True)
    sync_cursor = models.PositiveIntegerField(default=0)
    # Times the sweeper re-sent this sync without it making progress (reset by every chunk).
    sync_sweeps = models.PositiveSmallIntegerField(default=0)
    holders_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["sync_enabled", "sync_status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.symbol})"

    @property
    def is_bond(self) -> bool:
        return self.asset_type.startswith("BOND")

    PAUSE_FIELDS: ClassVar[tuple[str, ...]] = ("pause_state", "is_paused", "pause_error", "updated_at")

    def move_pause(self, new: str, *, error: str = "") -> None:
        """Move the pause state in memory with every coupled field (caller saves PAUSE_FIELDS);
        refuses illegal moves."""
        self.PauseState.check_move(self.pause_state, new)
        self.pause_state = new
        self.is_paused = new != self.PauseState.ACTIVE
        self.pause_error = error[:2000]


Asset.SyncStatus._moves = {  # type: ignore[attr-defined]
    "SYNCING": {"SYNCED", "FAILED", "SYNCING"},
    "SYNCED": {"SYNCING"},
    "FAILED": {"SYNCING"},
}

Asset.PauseState._moves = {  # type: ignore[attr-defined]
    # an operator's toggle goes through the lane; a sync may find the chain toggled behind our back
    "ACTIVE": {"PAUSING", "PAUSED"},
    "PAUSED": {"UNPAUSING", "ACTIVE"},
    # confirmed, or failed: back to what the chain says
    "PAUSING": {"PAUSED", "ACTIVE"},
    "UNPAUSING": {"ACTIVE", "PAUSED"},
}


class AssetHolder(models.Model):
    """A holder's current balance, kept in step by HolderBalanceUpdated events and full re-syncs.

    Rows are never deleted (a holder who sold everything keeps a zero balance), so corporate actions
    can read balances at an older snapshot for every address that ever held the token.
    """

    id = models.BigAutoField(primary_key=True)
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="holders")
    address = models.CharField(max_length=42)
    balance = Uint256Field(default=0)
    # Block the balance was read at: an older event never overwrites a newer balance.
    balance_block = models.BigIntegerField(default=0)
    last_seen_sync_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["asset", "address"], name="asset_holder_unique_address"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="asset_holder_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.address} holds {self.balance}"


class Distribution(models.Model):
    class Type(models.TextChoices):
        PAYOUT = "PAYOUT"
        CORPORATE_ACTION = "CORPORATE_ACTION"
        BOND_CASH_OUT = "BOND_CASH_OUT"

    class Subtype(models.TextChoices):
        IMMEDIATE = "IMMEDIATE"
        ONE_OFF = "ONE_OFF"
        RECURRING = "RECURRING"
        AUTOMATED = "AUTOMATED"

    class CorporateAction(models.TextChoices):
        DIVIDEND = "DIVIDEND"
        COUPON = "COUPON"

    class AmountType(models.TextChoices):
        FIXED = "FIXED"  # a total split pro rata by snapshot balance
        PERCENTAGE = "PERCENTAGE"  # of the payout contract's payment-token balance, split pro rata
        PER_TOKEN = "PER_TOKEN"  # noqa: S105 - corporate actions and cash-outs: balance * amount_per_token / 10**decimals

    class Recurrence(models.TextChoices):
        HOURLY = "HOURLY"
        DAILY = "DAILY"
        WEEKLY = "WEEKLY"
        MONTHLY = "MONTHLY"

    class CatchUp(models.TextChoices):
        """What a RECURRING series does with occurrences missed while the system was down or the asset paused."""

        LATEST = "latest", "latest: run the latest missed occurrence, skip the others"
        ALL = "all", "all: run every missed occurrence"
        NONE = "none", "none: skip every missed occurrence, wait for the next one"

    class Status(_Machine):
        SCHEDULED = "SCHEDULED"
        IN_PROGRESS = "IN_PROGRESS"
        FAILED = "FAILED"
        COMPLETED = "COMPLETED"
        CANCELLED = "CANCELLED"
        SKIPPED = "SKIPPED"  # a missed occurrence the series' catch-up policy did not run

    class CancelScope(models.TextChoices):
        """What a cancel of a series' occurrence meant; blank when it was not cancelled or is no series."""

        OCCURRENCE = "occurrence", "occurrence: this one only, the series goes on"
        SERIES = "series", "series: the whole series, nothing more is scheduled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="distributions")
    distribution_type = models.CharField(max_length=20, choices=Type.choices, default=Type.PAYOUT)
    subtype = models.CharField(max_length=12, choices=Subtype.choices, blank=True, default="")
    corporate_action = models.CharField(max_length=10, choices=CorporateAction.choices, blank=True, default="")
    corporate_action_id = Uint256Field(null=True, blank=True)
    snapshot_id = Uint256Field(null=True, blank=True)
    # The block whose state the split was computed from (holders and balances read at it, or the
    # block of the corporate action's token snapshot): one consistent view of the chain.
    snapshot_block = models.BigIntegerField(null=True, blank=True)
    amount_type = models.CharField(max_length=12, choices=AmountType.choices)
    amount = Uint256Field(null=True, blank=True)  # FIXED: total in payment-token base units
    percentage_bps = models.PositiveIntegerField(null=True, blank=True)  # PERCENTAGE: 1..10000
    amount_per_token = Uint256Field(null=True, blank=True)  # PER_TOKEN
    # What is actually split: FIXED amount, or the PERCENTAGE of the balance read once at planning.
    computed_total = Uint256Field(null=True, blank=True)
    concept = models.CharField(max_length=500, blank=True, default="")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    recurrence = models.CharField(max_length=8, choices=Recurrence.choices, blank=True, default="")
    # Recurring and automated series: every occurrence shares series_id; `occurrence` counts from 0 and
    # the next time is computed from the ORIGINAL anchor (so Jan 31 -> Feb 28 -> Mar 31).
    series_id = models.UUIDField(null=True, blank=True)
    occurrence = models.PositiveIntegerField(default=0)
    recurrence_anchor = models.DateTimeField(null=True, blank=True)
    # Copied to every occurrence of the series; used by RECURRING only.
    catch_up = models.CharField(max_length=8, choices=CatchUp.choices, default=CatchUp.LATEST)
    # The IANA zone whose wall clock a RECURRING series keeps (09:00 Madrid stays 09:00 Madrid across
    # daylight-saving changes); `scheduled_at` is still the UTC instant. Copied to every occurrence.
    time_zone = models.CharField(max_length=64, default="UTC")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    # Why it did not start (SKIPPED by the catch-up policy, CANCELLED and how); empty when it did.
    status_reason = models.TextField(blank=True, default="")
    # CANCELLED occurrences of a series: this one only, or the whole series (then no occurrence of it is
    # ever created again).
    cancel_scope = models.CharField(max_length=10, choices=CancelScope.choices, blank=True, default="")
    chain_distribution_id = models.CharField(max_length=66, unique=True)
    batch_size = models.PositiveIntegerField(null=True, blank=True)
    holders_count = models.PositiveIntegerField(null=True, blank=True)  # null until planned
    batches_count = models.PositiveIntegerField(null=True, blank=True)
    paid_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    paid_amount = Uint256Field(default=0)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    planned_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    execution_duration = models.DurationField(null=True, blank=True)
    # Planning reads the holders in chunks of PAYOUT_CHUNK_HOLDERS, one task each, into
    # PlanningHolder; `plan_cursor` is where the next chunk starts (a holder-list position, or the
    # last address read for a corporate action), `plan_read_done` says every holder was read.
    plan_cursor = models.CharField(max_length=42, blank=True, default="")
    plan_read_done = models.BooleanField(default=False)
    # Times the sweeper re-sent this planning without it making progress (reset by every chunk).
    plan_sweeps = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["status", "scheduled_at"]),
            models.Index(fields=["asset", "-created_at"]),
            models.Index(fields=["-created_at"]),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=Q(amount__isnull=True) | Q(amount__gt=0), name="distribution_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(percentage_bps__isnull=True) | Q(percentage_bps__gte=1, percentage_bps__lte=10000),
                name="distribution_percentage_range",
            ),
            models.CheckConstraint(
                condition=Q(paid_count__gte=0) & Q(failed_count__gte=0), name="distribution_counts_not_negative"
            ),
            models.UniqueConstraint(
                fields=["series_id", "occurrence"],
                condition=Q(series_id__isnull=False),
                name="distribution_unique_occurrence",
            ),
            models.UniqueConstraint(
                fields=["asset", "corporate_action", "corporate_action_id"],
                condition=Q(corporate_action_id__isnull=False),
                name="distribution_unique_corporate_action",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.distribution_type} {self.id} ({self.status})"

    @property
    def pending_count(self) -> int:
        return max((self.holders_count or 0) - self.paid_count - self.failed_count, 0)

    @property
    def progress_percent(self) -> int:
        if not self.holders_count:
            return 100 if self.status == self.Status.COMPLETED else 0
        return (self.paid_count * 100) // self.holders_count

    def transition(self, new: str) -> None:
        """Move in memory (caller saves with update_fields); refuses illegal moves."""
        self.Status.check_move(self.status, new)
        self.status = new


Distribution.Status._moves = {  # type: ignore[attr-defined]
    "SCHEDULED": {"IN_PROGRESS", "CANCELLED", "SKIPPED"},
    "IN_PROGRESS": {"COMPLETED", "FAILED"},
    "FAILED": {"IN_PROGRESS", "COMPLETED"},  # retry of the holders not yet paid; a late confirmation
    "COMPLETED": set(),
    "CANCELLED": set(),
    "SKIPPED": set(),
}


class PlanningHolder(models.Model):
    """A holder read by a distribution's planning, kept between its chunks; deleted once planned."""

    id = models.BigAutoField(primary_key=True)
    distribution = models.ForeignKey(Distribution, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=42)
    balance = Uint256Field()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["distribution", "address"], name="planning_holder_unique_address"),
        ]

    def __str__(self) -> str:
        return f"{self.address} held {self.balance}"


class BatchPayout(models.Model):
    class Status(_Machine):
        PENDING = "PENDING"  # written, not yet handed to the chain lane
        IN_PROGRESS = "IN_PROGRESS"
        PARTIALLY_COMPLETED = "PARTIALLY_COMPLETED"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"

    id = models.BigAutoField(primary_key=True)
    distribution = models.ForeignKey(Distribution, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    holders_count = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    chain_batch_id = models.CharField(max_length=66, blank=True, default="", db_index=True)
    chain_transaction_id = models.UUIDField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66, blank=True, default="")
    nonce = models.BigIntegerField(null=True, blank=True)
    paid_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["distribution", "number"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["distribution", "number"], name="batch_unique_number"),
        ]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["status", "updated_at"])]

    def __str__(self) -> str:
        return f"Batch {self.number}"


BatchPayout.Status._moves = {  # type: ignore[attr-defined]
    "PENDING": {"IN_PROGRESS", "COMPLETED", "PARTIALLY_COMPLETED", "FAILED"},  # settled before it was re-sent
    "IN_PROGRESS": {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"},
    "PARTIALLY_COMPLETED": {"PENDING", "COMPLETED"},
    "FAILED": {"PENDING", "COMPLETED", "PARTIALLY_COMPLETED"},
    "COMPLETED": set(),
}


class HolderPayment(models.Model):
    class Status(_Machine):
        PENDING = "PENDING"
        RETRYING = "RETRYING"
        SUCCESS = "SUCCESS"
        FAILED = "FAILED"

    id = models.BigAutoField(primary_key=True)
    distribution = models.ForeignKey(Distribution, on_delete=models.CASCADE, related_name="payments")
    batch_number = models.PositiveIntegerField()
    holder_address = models.CharField(max_length=42)
    balance = Uint256Field()  # at the snapshot
    amount = Uint256Field()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    retry_count = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    next_retry_at = models.DateTimeField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66, blank=True, default="")
    updated_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["distribution", "holder_address"], name="payment_unique_holder"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_gt_0"),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["distribution", "batch_number", "holder_address"], name="payment_batch_idx"),
            models.Index(fields=["distribution", "status"], name="payment_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.holder_address}: {self.amount} ({self.status})"


HolderPayment.Status._moves = {  # type: ignore[attr-defined]
    "PENDING": {"SUCCESS", "FAILED"},
    "RETRYING": {"SUCCESS", "FAILED"},
    "FAILED": {"RETRYING", "SUCCESS"},  # SUCCESS: a late confirmation of an earlier attempt
    "SUCCESS": set(),
}


class FundsWithdrawal(models.Model):
    """Payment tokens the payout contract's admin takes back (leftovers), sent through the chain lane.

    While PENDING it reserves its amount, so no distribution can start counting on it.
    """

    class Status(_Machine):
        PENDING = "PENDING"
        CONFIRMED = "CONFIRMED"
        FAILED = "FAILED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="withdrawals")
    to_address = models.CharField(max_length=42)
    amount = Uint256Field()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    chain_transaction_id = models.UUIDField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66, blank=True, default="")
    error = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["asset", "status"])]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"withdrawal of {self.amount} to {self.to_address} ({self.status})"

    def mark_confirmed(self, *, tx_hash: str, now: datetime) -> None:
        self.Status.check_move(self.status, self.Status.CONFIRMED)
        self.status, self.tx_hash, self.error, self.finished_at = self.Status.CONFIRMED, tx_hash, "", now
        self.save(update_fields=["status", "tx_hash", "error", "finished_at"])

    def mark_failed(self, *, error: str, now: datetime) -> None:
        self.Status.check_move(self.status, self.Status.FAILED)
        self.status, self.error, self.finished_at = self.Status.FAILED, error[:2000], now
        self.save(update_fields=["status", "error", "finished_at"])


FundsWithdrawal.Status._moves = {  # type: ignore[attr-defined]
    "PENDING": {"CONFIRMED", "FAILED"},
    "CONFIRMED": set(),
    "FAILED": set(),
}
