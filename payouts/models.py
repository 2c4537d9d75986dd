"""Payouts data: assets, their holders, distributions, batch payouts and holder payments.

Amounts are integers in base units stored in `AmountField` (numeric(78, 0): any uint256).
Statuses are `TextChoices`; each model declares its allowed moves once as a `StateMachine`
(`config/states.py`): its `mark_<state>()` methods set every coupled field and refuse illegal moves,
and `MOVES.claim` runs the conditional `UPDATE ... WHERE status IN (allowed sources)` the services
use for bulk moves and when two workers may race.

Scale notes (an asset may have 1,000,000 holders):
- `HolderPayment` has no foreign key to `BatchPayout`: a payment belongs to batch
  (`distribution`, `batch_number`), assigned from its position in the address-ordered snapshot,
  so payments can be streamed in with one COPY before any batch row exists.
- Every list the API or admin shows is served by an index that matches its ordering.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from chain.fields import Uint256Field
from config.states import IllegalTransition, StateMachine

__all__ = [
    "Asset",
    "AssetHolder",
    "BatchPayout",
    "Distribution",
    "FundsWithdrawal",
    "HolderPayment",
    "IllegalTransition",
    "PlanningHolder",
]


class Asset(models.Model):
    class AssetType(models.TextChoices):
        EQUITY = "EQUITY"
        BOND_VARIABLE_RATE = "BOND_VARIABLE_RATE"
        BOND_FIXED_RATE = "BOND_FIXED_RATE"
        BOND_KPI_LINKED_RATE = "BOND_KPI_LINKED_RATE"
        BOND_SPT_RATE = "BOND_SPT_RATE"

    class SyncStatus(models.TextChoices):
        SYNCING = "SYNCING"
        SYNCED = "SYNCED"
        FAILED = "FAILED"

    class PauseState(models.TextChoices):
        """Where the payout contract's pause stands. Only ACTIVE pays: a toggle on its way to the chain
        (PAUSING, UNPAUSING) holds every batch until the lane confirms it or it fails."""

        ACTIVE = "ACTIVE"  # unpaused on chain, confirmed
        PAUSING = "PAUSING"  # pause() handed to the lane, not yet confirmed
        PAUSED = "PAUSED"  # paused on chain, confirmed
        UNPAUSING = "UNPAUSING"  # unpause() handed to the lane, not yet confirmed

        @classmethod
        def in_flight(cls) -> frozenset[str]:
            return frozenset({cls.PAUSING, cls.UNPAUSING})

    SYNC_MOVES: ClassVar[StateMachine] = StateMachine(
        "sync_status",
        {
            SyncStatus.SYNCING: {SyncStatus.SYNCED, SyncStatus.FAILED, SyncStatus.SYNCING},
            SyncStatus.SYNCED: {SyncStatus.SYNCING},
            SyncStatus.FAILED: {SyncStatus.SYNCING},
        },
    )
    PAUSE_MOVES: ClassVar[StateMachine] = StateMachine(
        "pause_state",
        {
            # an operator's toggle goes through the lane; a sync may find the chain toggled behind our back
            PauseState.ACTIVE: {PauseState.PAUSING, PauseState.PAUSED},
            PauseState.PAUSED: {PauseState.UNPAUSING, PauseState.ACTIVE},
            # confirmed, or failed: back to what the chain says
            PauseState.PAUSING: {PauseState.PAUSED, PauseState.ACTIVE},
            PauseState.UNPAUSING: {PauseState.ACTIVE, PauseState.PAUSED},
        },
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    symbol = models.CharField(max_length=32)
    token_address = models.CharField(max_length=42, unique=True)
    # Hedera entity ids ("shard.realm.num") of the three contracts, where known: given at import or
    # looked up on the Mirror Node (`chain.hedera`). Null: not on Hedera, or not known (yet).
    hedera_token_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - null: unknown
    asset_type = models.CharField(max_length=32, choices=AssetType.choices)
    decimals = models.PositiveSmallIntegerField(default=0)
    maturity_date = models.DateField(null=True, blank=True)
    payout_contract_address = models.CharField(max_length=42, blank=True, default="")
    hedera_payout_contract_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - null: unknown
    payment_token_address = models.CharField(max_length=42)
    hedera_payment_token_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - null: unknown
    payment_token_decimals = models.PositiveSmallIntegerField(default=6)
    # The payment token's `symbol()`, read at import; shown next to every amount (empty: not read yet).
    payment_token_symbol = models.CharField(max_length=32, blank=True, default="")
    # True unless the chain is confirmed unpaused (pause_state ACTIVE): a paused asset starts nothing
    # and sends no batch. Set together with pause_state by the `mark_<pause state>` methods.
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

    # --- Sync moves (a sync that fails or finishes is claimed: see `payouts.services.assets`) -------
    # A sync (re)starts from the top of the holder list, at a block its first chunk pins.
    SYNC_RESTART: ClassVar[dict[str, Any]] = {"sync_block": None, "sync_cursor": 0, "sync_sweeps": 0}

    def mark_syncing(self, *, now: datetime) -> None:
        self.SYNC_MOVES.move(self, self.SyncStatus.SYNCING, sync_started_at=now, **self.SYNC_RESTART, updated_at=now)

    # --- Pause moves: `is_paused` and `pause_error` move with the state ----------------------------
    def mark_pausing(self) -> None:
        """An operator's pause is on its way to the chain (a new toggle: its own generation)."""
        self._move_pause(self.PauseState.PAUSING, pause_generation=self.pause_generation + 1)

    def mark_unpausing(self) -> None:
        """An operator's unpause is on its way to the chain (a new toggle: its own generation)."""
        self._move_pause(self.PauseState.UNPAUSING, pause_generation=self.pause_generation + 1)

    def mark_paused(self, *, error: str = "") -> None:
        self._move_pause(self.PauseState.PAUSED, pause_error=error[:2000])

    def mark_active(self, *, error: str = "") -> None:
        self._move_pause(self.PauseState.ACTIVE, pause_error=error[:2000])

    def _move_pause(self, new: str, **fields: Any) -> None:
        fields.setdefault("pause_error", "")
        self.PAUSE_MOVES.move(self, new, is_paused=new != self.PauseState.ACTIVE, **fields, updated_at=timezone.now())


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
        return self.address  # the balance needs its asset's decimals: the admin shows it in token units


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

    class Status(models.TextChoices):
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

    MOVES: ClassVar[StateMachine] = StateMachine(
        "status",
        {
            Status.SCHEDULED: {Status.IN_PROGRESS, Status.CANCELLED, Status.SKIPPED},
            Status.IN_PROGRESS: {Status.COMPLETED, Status.FAILED},
            # a retry of the holders not yet paid; a late confirmation
            Status.FAILED: {Status.IN_PROGRESS, Status.COMPLETED},
            Status.COMPLETED: set(),
            Status.CANCELLED: set(),
            Status.SKIPPED: set(),
        },
    )

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

    # --- Moves of one locked row (a start, and the roll-up to COMPLETED/FAILED, are claims) ---------
    def mark_in_progress(self) -> None:
        """Running again after it FAILED (a retry): its last outcome is cleared. A start from SCHEDULED
        is a claim (`distribution_claim`): two triggers may race for it."""
        now = timezone.now()
        self.MOVES.move(
            self,
            self.Status.IN_PROGRESS,
            started_at=self.started_at or now,
            error="",
            finished_at=None,
            execution_duration=None,
            updated_at=now,
        )

    def mark_failed(self, *, error: str, now: datetime, **fields: Any) -> None:
        """FAILED with its reason; `fields` are other columns to save with it."""
        self.MOVES.move(self, self.Status.FAILED, error=error, finished_at=now, **fields, updated_at=now)

    def mark_cancelled(self, *, reason: str, now: datetime, scope: str = "") -> None:
        self.MOVES.move(
            self, self.Status.CANCELLED, status_reason=reason, cancel_scope=scope, finished_at=now, updated_at=now
        )

    def mark_skipped(self, *, reason: str, now: datetime) -> None:
        """Missed, and not run by its series' catch-up policy."""
        self.MOVES.move(self, self.Status.SKIPPED, status_reason=reason, finished_at=now, updated_at=now)


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
    class Status(models.TextChoices):
        PENDING = "PENDING"  # written, not yet handed to the chain lane
        IN_PROGRESS = "IN_PROGRESS"
        PARTIALLY_COMPLETED = "PARTIALLY_COMPLETED"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"

    MOVES: ClassVar[StateMachine] = StateMachine(
        "status",
        {
            # settled before it was re-sent
            Status.PENDING: {Status.IN_PROGRESS, Status.COMPLETED, Status.PARTIALLY_COMPLETED, Status.FAILED},
            Status.IN_PROGRESS: {Status.COMPLETED, Status.PARTIALLY_COMPLETED, Status.FAILED},
            Status.PARTIALLY_COMPLETED: {Status.PENDING, Status.COMPLETED},
            Status.FAILED: {Status.PENDING, Status.COMPLETED, Status.PARTIALLY_COMPLETED},
            Status.COMPLETED: set(),
        },
    )

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

    def mark_in_progress(
        self, *, attempt: int, chain_batch_id: str, chain_transaction_id: uuid.UUID, now: datetime
    ) -> None:
        """Handed to the chain lane as attempt `attempt`: the previous attempt's results are cleared."""
        self.MOVES.move(
            self,
            self.Status.IN_PROGRESS,
            attempts=attempt,
            chain_batch_id=chain_batch_id,
            chain_transaction_id=chain_transaction_id,
            tx_hash="",
            nonce=None,
            error="",
            submitted_at=now,
            updated_at=now,
        )

    def mark_settled(self, *, paid: int, failed: int, error: str = "") -> None:
        """COMPLETED, PARTIALLY_COMPLETED or FAILED from its holders' results, none of them open.

        A batch rolled up again in the state it is in only has its counts refreshed.
        """
        if failed == 0:
            to = self.Status.COMPLETED
        elif paid == 0:
            to = self.Status.FAILED
        else:
            to = self.Status.PARTIALLY_COMPLETED
        if to != self.status:
            self.MOVES.check(self.status, to)
        now = timezone.now()
        self.status = to
        self.paid_count, self.failed_count = paid, failed
        self.confirmed_at = self.confirmed_at or now
        if error:
            self.error = error[:2000]
        self.updated_at = now
        self.save(update_fields=["status", "paid_count", "failed_count", "confirmed_at", "error", "updated_at"])


class HolderPayment(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        RETRYING = "RETRYING"
        SUCCESS = "SUCCESS"
        FAILED = "FAILED"

    # Payments move in bulk only, each move a `MOVES.claim` (see `payouts.services.confirmation`).
    MOVES: ClassVar[StateMachine] = StateMachine(
        "status",
        {
            Status.PENDING: {Status.SUCCESS, Status.FAILED},
            Status.RETRYING: {Status.SUCCESS, Status.FAILED},
            Status.FAILED: {Status.RETRYING, Status.SUCCESS},  # SUCCESS: a late confirmation of an earlier attempt
            Status.SUCCESS: set(),
        },
    )

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
        return f"payment to {self.holder_address} ({self.status})"  # amounts: in token units, by the admin


class FundsWithdrawal(models.Model):
    """Payment tokens the payout contract's admin takes back (leftovers), sent through the chain lane.

    While PENDING it reserves its amount, so no distribution can start counting on it.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING"
        CONFIRMED = "CONFIRMED"
        FAILED = "FAILED"

    MOVES: ClassVar[StateMachine] = StateMachine(
        "status",
        {Status.PENDING: {Status.CONFIRMED, Status.FAILED}, Status.CONFIRMED: set(), Status.FAILED: set()},
    )

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
        return f"withdrawal to {self.to_address} ({self.status})"  # amounts: in token units, by the admin

    def mark_confirmed(self, *, tx_hash: str, now: datetime) -> None:
        self.MOVES.move(self, self.Status.CONFIRMED, tx_hash=tx_hash, error="", finished_at=now)

    def mark_failed(self, *, error: str, now: datetime) -> None:
        self.MOVES.move(self, self.Status.FAILED, error=error[:2000], finished_at=now)
