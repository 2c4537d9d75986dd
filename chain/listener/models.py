"""Listener tables: event listeners (one cursor per stream) and the chain events they stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from django.db import models
from django.utils import timezone

from chain.listener.types import MirrorPosition
from config.states import StateMachine


class EventListener(models.Model):
    """One stream of logs from one contract, with its cursor.

    The cursor says what is already stored (and processed): for the JSON-RPC source the last block
    whose logs are all stored (`last_processed_block`); for the Hedera Mirror Node source the
    consensus timestamp ("seconds.nanos") of the last stored log and that log's index in its
    transaction (`last_processed_timestamp`, `last_processed_log_index`), the same position the
    Mirror Node's own `links.next` uses. The cursor only moves in the transaction that stores the
    events up to it.
    """

    class Source(models.TextChoices):
        RPC = "RPC", "JSON-RPC eth_getLogs"
        MIRROR_NODE = "MIRROR_NODE", "Hedera Mirror Node"

    name = models.CharField(max_length=100, unique=True)
    contract_address = models.CharField(max_length=42, help_text="Checksummed 0x address of the contract.")
    hedera_id = models.CharField(  # noqa: DJ001 - null: not on Hedera, or not known
        max_length=64, null=True, blank=True, help_text="The contract's Hedera entity id (shard.realm.num), if known."
    )
    abi_name = models.CharField(max_length=100, help_text="Artifact name in chain/contracts/build used to decode.")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.RPC)
    enabled = models.BooleanField(default=True)
    confirmations = models.PositiveIntegerField(default=1, help_text="Blocks the RPC source stays behind the head.")
    max_block_range = models.PositiveIntegerField(default=2000, help_text="Most blocks asked in one eth_getLogs.")
    start_block = models.PositiveBigIntegerField(default=0, help_text="RPC: first block to read.")
    start_timestamp = models.CharField(
        max_length=21, default="0", help_text='Mirror Node: read logs at or after this "seconds.nanos".'
    )
    last_processed_block = models.BigIntegerField(null=True, blank=True)
    last_processed_timestamp = models.CharField(max_length=21, null=True, blank=True)  # noqa: DJ001 - null: no cursor
    last_processed_log_index = models.IntegerField(null=True, blank=True)
    head_block = models.BigIntegerField(null=True, blank=True, help_text="RPC: chain head seen at the last poll.")
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    events_stored = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["name"]

    def __str__(self) -> str:
        return self.name

    def sync_lag(self) -> str:
        """RPC: blocks between the head seen at the last poll and the cursor (confirmations included).

        Mirror Node: time since the consensus timestamp of the last stored log, which also grows
        while the contract is quiet; read it together with `last_success_at`.
        """
        if self.source == self.Source.RPC:
            if self.head_block is None:
                return "unknown (never polled)"
            done = self.last_processed_block if self.last_processed_block is not None else self.start_block - 1
            return f"{max(0, self.head_block - done)} blocks"
        if self.last_processed_timestamp is None:
            return "nothing stored yet"
        seconds = (
            int(timezone.now().timestamp()) - MirrorPosition.parse_timestamp(self.last_processed_timestamp) // 10**9
        )
        return f"{max(0, seconds)} s"

    def cursor_display(self) -> str:
        if self.source == self.Source.RPC:
            return "-" if self.last_processed_block is None else f"block {self.last_processed_block}"
        if self.last_processed_timestamp is None:
            return "-"
        return f"{self.last_processed_timestamp} #{self.last_processed_log_index}"


class ChainEvent(models.Model):
    """One stored log, unique by (transaction hash, log index): storing is idempotent.

    `log_index` is the block's log index for the RPC source and the log's index within its
    transaction for the Mirror Node (what the Mirror Node calls `index`).
    """

    class Status(models.TextChoices):
        PROCESSED = "PROCESSED", "Processed"
        UNDECODABLE = "UNDECODABLE", "Undecodable"
        NO_PROCESSOR = "NO_PROCESSOR", "No processor"
        FAILED = "FAILED", "Processor failed"

    REPROCESSABLE: ClassVar[frozenset[str]] = frozenset({Status.FAILED, Status.NO_PROCESSOR})
    # An event is stored NO_PROCESSOR (decoded) or UNDECODABLE; a processor run ends it PROCESSED or
    # FAILED; an operator's reprocess decodes it again (fixed ABI: NO_PROCESSOR; still not: UNDECODABLE).
    MOVES: ClassVar[StateMachine] = StateMachine(
        "status",
        {
            Status.NO_PROCESSOR: {Status.PROCESSED, Status.FAILED, Status.UNDECODABLE},
            Status.FAILED: {Status.PROCESSED, Status.FAILED, Status.UNDECODABLE},
            Status.UNDECODABLE: {Status.NO_PROCESSOR, Status.UNDECODABLE},
            Status.PROCESSED: set(),
        },
    )

    listener = models.ForeignKey(EventListener, on_delete=models.PROTECT, related_name="events")
    tx_hash = models.CharField(max_length=98, help_text="0x hex; Hedera native hashes are 48 bytes.")
    log_index = models.IntegerField()
    contract_address = models.CharField(max_length=42)
    block_number = models.BigIntegerField()
    block_timestamp = models.DateTimeField(null=True, blank=True)
    consensus_timestamp = models.CharField(max_length=21, blank=True, default="", help_text="Mirror Node only.")
    event_name = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 - null: undecodable
    args = models.JSONField(default=dict, blank=True, help_text="Decoded arguments; integers as decimal strings.")
    raw_log = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Times a processor ran for this event.")
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["block_number", "consensus_timestamp", "log_index"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["tx_hash", "log_index"], name="chain_event_unique_tx_log"),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["status", "event_name"], name="chain_event_status_name"),
            models.Index(fields=["listener", "block_number"], name="chain_event_listener_block"),
        ]

    def __str__(self) -> str:
        return f"{self.event_name or '?'} {self.tx_hash}:{self.log_index}"

    def mark_processed(self, *, now: datetime) -> None:
        """Its processor ran (one more run counted)."""
        self.MOVES.move(self, self.Status.PROCESSED, error="", processed_at=now, attempts=self.attempts + 1)

    def mark_failed(self, error: str) -> None:
        """Its processor raised `error` (one more run counted)."""
        self.MOVES.move(self, self.Status.FAILED, error=error, attempts=self.attempts + 1)

    def mark_undecodable(self, error: str) -> None:
        self.MOVES.move(self, self.Status.UNDECODABLE, error=error)

    def mark_no_processor(self, *, event_name: str, args: dict[str, Any]) -> None:
        """Decoded at last (its ABI was fixed): waiting for its processor."""
        self.MOVES.move(self, self.Status.NO_PROCESSOR, error="", event_name=event_name, args=args)
