"""Tables of the submission lane: one row per intended transaction, one per signed version, one
nonce row per (chain, sender).

A transaction moves PENDING -> SIGNED -> BROADCAST -> MINED -> CONFIRMED | REVERTED, or PENDING ->
FAILED when it can never be sent (its gas estimate reverts), or ends CANCELLED when an operator
cancelled it and a cancel version (a zero-value transfer to the sender itself, at the same nonce) was
mined instead. MINED: a receipt was seen, but its block is less than CHAIN_CONFIRMATIONS deep and may
still be reorganised away (then back to BROADCAST); the result is final, and handed to the purpose's
handler, only from a receipt that deep whose block is still canonical. Every signed version is
stored, with its hash, before it is broadcast; all versions of one transaction share its nonce, so at
most one of them can ever be mined. The handler's last error and its runs are kept on the row
(`handler_error`, `handler_attempts`).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.db import models, transaction
from django.utils import timezone

from chain.fields import Uint256Field
from config.instruments import CHAIN_TRANSACTION_SECONDS_TO_FINAL
from config.states import IllegalTransition, StateMachine

__all__ = ["ChainTransaction", "IllegalTransition", "SenderNonce", "SignedVersion"]


class ChainTransaction(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING", "pending (not signed)"
        SIGNED = "SIGNED", "signed (stored, not yet accepted by the node)"
        BROADCAST = "BROADCAST", "broadcast (waiting for a receipt)"
        MINED = "MINED", "mined (waiting for CHAIN_CONFIRMATIONS blocks on top)"
        CONFIRMED = "CONFIRMED", "confirmed"
        REVERTED = "REVERTED", "reverted on chain"
        FAILED = "FAILED", "failed (never sent)"
        CANCELLED = "CANCELLED", "cancelled (its cancel version took the nonce)"

        @classmethod
        def final(cls) -> frozenset[str]:
            return frozenset({cls.CONFIRMED, cls.REVERTED, cls.FAILED, cls.CANCELLED})

    MOVES: ClassVar[StateMachine] = StateMachine(
        "status",
        {
            # PENDING -> CANCELLED: cancelled, then its nonce proven used by another transaction (never re-sent)
            Status.PENDING: frozenset({Status.SIGNED, Status.FAILED, Status.CANCELLED}),
            # back to PENDING only when the chain proves another transaction consumed the nonce;
            # CANCELLED when the mined version is the operator's cancel
            Status.SIGNED: frozenset(
                {Status.BROADCAST, Status.MINED, Status.CONFIRMED, Status.REVERTED, Status.PENDING, Status.CANCELLED}
            ),
            Status.BROADCAST: frozenset(
                {Status.MINED, Status.CONFIRMED, Status.REVERTED, Status.PENDING, Status.CANCELLED}
            ),
            # back to BROADCAST when the receipt's block was reorganised away
            Status.MINED: frozenset({Status.CONFIRMED, Status.REVERTED, Status.BROADCAST, Status.CANCELLED}),
            Status.CONFIRMED: frozenset(),
            Status.REVERTED: frozenset(),
            Status.FAILED: frozenset(),
            Status.CANCELLED: frozenset(),
        },
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    intent_key = models.CharField(max_length=200, unique=True, help_text="The caller's idempotency key.")
    purpose = models.CharField(max_length=64, help_text="Who asked, e.g. payout_batch; picks the handler.")
    chain_id = models.BigIntegerField(null=True, blank=True)
    sender = models.CharField(max_length=42, blank=True, default="")
    to = models.CharField(max_length=42)
    data = models.TextField(help_text="Calldata, 0x hex.")
    value = Uint256Field(default=0)
    nonce = models.BigIntegerField(null=True, blank=True)
    gas_limit = models.BigIntegerField(null=True, blank=True)
    max_fee_per_gas = Uint256Field(null=True, blank=True)
    max_priority_fee_per_gas = Uint256Field(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    tx_hash = models.CharField(max_length=66, blank=True, default="", help_text="Hash of the version that counts.")
    block_number = models.BigIntegerField(null=True, blank=True)
    block_hash = models.CharField(
        max_length=66, blank=True, default="", help_text="Block of the receipt the status comes from."
    )
    gas_used = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    handler_error = models.TextField(
        blank=True, default="", help_text="The purpose's handler raised this on its last run (empty: it ran fine)."
    )
    handler_attempts = models.PositiveIntegerField(default=0, help_text="Times the purpose's handler was run.")
    cancel_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="An operator asked to cancel it: every version signed since is a cancel."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    broadcast_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["status", "updated_at"], name="chain_tx_status_updated"),
            models.Index(fields=["chain_id", "sender", "nonce"], name="chain_tx_sender_nonce"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.intent_key} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.Status.final()

    @property
    def data_bytes(self) -> bytes:
        return bytes.fromhex(self.data.removeprefix("0x"))

    def transition(self, status: str, **fields: Any) -> None:
        """Move to `status` (refusing illegal moves), set `fields`, and save exactly those columns.

        Call it on a row locked with select_for_update inside the caller's transaction.
        """
        became_final = status != self.status and status in self.Status.final()
        if status != self.status:
            self.MOVES.check(self.status, status)
        self.status = status
        for name, value in fields.items():
            setattr(self, name, value)
        now = timezone.now()
        if status == self.Status.SIGNED:
            self.signed_at = now
        elif status == self.Status.BROADCAST and self.broadcast_at is None:
            self.broadcast_at = now
        elif status in self.Status.final():
            self.finished_at = now
        self.updated_at = now
        self.save(update_fields=["status", "updated_at", "signed_at", "broadcast_at", "finished_at", *fields])
        if became_final:  # counted once the move is committed, never for a rolled-back one
            seconds, purpose = (now - self.created_at).total_seconds(), self.purpose
            transaction.on_commit(lambda: CHAIN_TRANSACTION_SECONDS_TO_FINAL.labels(purpose).observe(seconds))


class SignedVersion(models.Model):
    """One signed version of a transaction (the first one, then each replacement or cancel), stored
    before it is broadcast so that recovery can re-send or look up exactly what was signed."""

    transaction = models.ForeignKey(ChainTransaction, on_delete=models.CASCADE, related_name="versions")
    tx_hash = models.CharField(max_length=66, unique=True)
    raw = models.TextField(help_text="Signed raw transaction, 0x hex.")
    nonce = models.BigIntegerField()
    max_fee_per_gas = Uint256Field()
    max_priority_fee_per_gas = Uint256Field()
    gas_limit = models.BigIntegerField()
    is_cancel = models.BooleanField(
        default=False, help_text="A cancel: a zero-value transfer to the sender itself, at the same nonce."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    broadcast_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]

    def __str__(self) -> str:
        return self.tx_hash

    @property
    def raw_bytes(self) -> bytes:
        return bytes.fromhex(self.raw.removeprefix("0x"))


class SenderNonce(models.Model):
    """The next nonce to give out for one signing account on one chain (locked while assigning)."""

    chain_id = models.BigIntegerField()
    sender = models.CharField(max_length=42)
    next_nonce = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["chain_id", "sender"], name="chain_sender_nonce_unique"),
            models.CheckConstraint(condition=models.Q(next_nonce__gte=0), name="chain_sender_nonce_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sender}@{self.chain_id}: {self.next_nonce}"
