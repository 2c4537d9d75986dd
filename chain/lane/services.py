"""The submission lane's services: enqueue, submit (sign, store, broadcast), confirm, replace, cancel,
re-run a failed handler, sweep.

Rules that keep money safe (see README "Chain"):
- A signed transaction and its hash are stored BEFORE it is broadcast; recovery re-sends exactly
  what was stored, it never signs the intent again under a new nonce unless the chain proves that
  another transaction consumed the nonce (mined nonce past ours and no receipt for any version).
- Nonces come from one row per (chain, sender), locked with select_for_update, and every submission
  for a sender runs under a Redis lock, so the lane stays ordered with any number of workers.
- No receipt is awaited before the next send: confirmation is a separate task plus the sweeper.
- Signed transactions are broadcast lowest nonce first. A node that does not buffer transactions by
  nonce (Hedera's JSON-RPC relay) refuses a nonce above the account's next one: the refused one and
  those above it stay SIGNED, same nonce, same bytes, and are sent again when a lower one is mined.
- A result is final (and handed to the purpose's handler) only from a receipt CHAIN_CONFIRMATIONS
  blocks deep whose block is still canonical; until then the transaction is MINED.
- No network I/O inside `transaction.atomic()`.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from eth_utils.address import to_checksum_address

from chain.errors import ChainError, NonceTooHigh, NonceTooLow, PermanentChainError, TransactionReverted, Underpriced
from chain.lane.base import (
    CANCEL_GAS_LIMIT,
    CONFIRM_DELAY_SECONDS,
    DEFAULT_FEE_BUMP_PERCENT,
    GAS_HEADROOM_PERCENT,
    HANDLER_MAX_ATTEMPTS,
    SWEEP_BATCH,
    SWEEP_STALE_AFTER,
    CancelRefused,
    Lane,
    LaneBusy,
    ReplaceRefused,
    Status,
    bump,
    current_lane,
    find_receipt,
    finish,
    record_error,
    record_receipt,
    record_reorged_out,
    register_transaction_handler,
    required,
    run_handler,
    transaction_dict,
    unregister_transaction_handler,
)
from chain.lane.models import ChainTransaction, SenderNonce, SignedVersion
from chain.selectors import HaltedLane, halted_lanes, stuck_transactions
from config.alerts import AlertField, send_alert
from config.enqueue import publish, publish_on_commit

logger = logging.getLogger(__name__)

# Prefix of the error of a signed transaction the node refused as "nonce too high" (or held back
# behind one): it is sent again, in nonce order, when a lower nonce is mined.
WAITING_FOR_LOWER_NONCES = "waiting for the lower nonces to be mined"

__all__ = [
    "CancelRefused",
    "LaneBusy",
    "ReplaceRefused",
    "estimate_gas",
    "register_transaction_handler",
    "transaction_cancel",
    "transaction_cancel_request",
    "transaction_confirm",
    "transaction_enqueue",
    "transaction_handler_rerun",
    "transaction_prepare",
    "unregister_transaction_handler",
    "transaction_replace",
    "transaction_submit",
    "transaction_sweep",
]


def estimate_gas(*, to: str, data: bytes, value: int = 0) -> int:
    """Gas the configured signer would need for this call (raises TransactionReverted if it reverts)."""
    lane = current_lane()
    return lane.client.estimate_gas(sender=lane.sender, to=to, data=data, value=value)


# --- enqueue --------------------------------------------------------------------------------------
def transaction_enqueue(*, intent_key: str, purpose: str, to: str, data: bytes, value: int = 0) -> ChainTransaction:
    """Record the intent to send a transaction and submit it after the caller's commit.

    Call it inside the caller's `transaction.atomic()`. Idempotent by `intent_key`: the same key
    returns the existing row (a different payload under the same key is refused).
    """
    from chain.lane.tasks import submit_transaction_task

    if value < 0:
        raise ValueError("value must be a non-negative integer")
    fields = {"purpose": purpose, "to": to_checksum_address(to), "data": "0x" + data.hex(), "value": value}
    row, created = ChainTransaction.objects.get_or_create(intent_key=intent_key, defaults=fields)
    if not created:
        if (row.purpose, row.to, row.data, row.value) != tuple(fields.values()):
            raise ValueError(f"intent_key {intent_key!r} already used for a different transaction")
        return row
    publish_on_commit(submit_transaction_task, str(row.pk))
    logger.info("chain transaction enqueued id=%s purpose=%s intent=%s", row.pk, purpose, intent_key)
    return row


# --- submit ---------------------------------------------------------------------------------------
def transaction_submit(*, transaction_id: str) -> str:
    """Sign (if not yet signed), store, then broadcast one transaction; returns its status.

    Safe to call any number of times and after a crash at any point.
    """
    row = ChainTransaction.objects.get(pk=transaction_id)
    if row.is_final or row.status in (Status.BROADCAST, Status.MINED):
        return row.status
    lane = current_lane()
    with lane.locked():
        for _ in range(3):  # a proven-consumed nonce sends the intent round once more
            row.refresh_from_db()
            if row.status == Status.PENDING:
                transaction_prepare(transaction_id=transaction_id, lane=lane)
                row.refresh_from_db()
            if row.status != Status.SIGNED:
                break
            _broadcast_in_nonce_order(lane, up_to=row)
            row.refresh_from_db()
            if row.status != Status.PENDING:
                break
    return row.status


def transaction_prepare(*, transaction_id: str, lane: Lane | None = None) -> ChainTransaction:
    """Assign a nonce (once), sign, and store the signed version: PENDING -> SIGNED (or FAILED).

    Nothing is broadcast here. Callers other than `transaction_submit` must hold the lane lock.
    """
    lane = lane or current_lane()
    row = ChainTransaction.objects.get(pk=transaction_id)
    if row.status != Status.PENDING:
        return row
    if row.cancel_requested_at is not None and row.nonce is None:
        # Cancelled, then its nonce proven used by another transaction: it holds no nonce any more,
        # and an intent an operator cancelled is never signed again.
        finish(row.pk, Status.CANCELLED, error="cancelled: its nonce was used by another transaction; not sent again")
        return ChainTransaction.objects.get(pk=transaction_id)
    if row.sender and row.sender != lane.sender:
        record_error(row, f"signer changed: transaction belongs to {row.sender}, signer is {lane.sender}")
        raise ChainError("the configured signer is not this transaction's sender")
    if row.nonce is None:
        assigned = _assign_nonce(lane, row)
        if assigned is None or assigned.status != Status.PENDING:
            return ChainTransaction.objects.get(pk=transaction_id)
        row = assigned
    if row.cancel_requested_at is not None:
        return row  # an operator cancelled it: only its cancel version is signed (`transaction_cancel`)
    try:
        signed = lane.signer.sign_transaction(transaction_dict(lane, row))
    except PermanentChainError as exc:
        # The signer refuses for good (a custody policy, say): the transaction keeps its nonce, so
        # everything after it waits. Say why on the row; the sweeper names it as the halted lane,
        # and an operator cancels it (a zero-value self-transfer fills the nonce) or fixes the policy.
        record_error(row, f"the signer refused: {exc}")
        raise
    with transaction.atomic():
        locked = ChainTransaction.objects.select_for_update().get(pk=transaction_id)
        if locked.status != Status.PENDING or locked.nonce != row.nonce:
            return locked
        SignedVersion.objects.create(
            transaction=locked,
            tx_hash=signed.tx_hash,
            raw="0x" + signed.raw.hex(),
            nonce=required(row.nonce),
            max_fee_per_gas=required(row.max_fee_per_gas),
            max_priority_fee_per_gas=required(row.max_priority_fee_per_gas),
            gas_limit=required(row.gas_limit),
        )
        locked.transition(Status.SIGNED, tx_hash=signed.tx_hash, error="")
    logger.info("chain transaction signed id=%s nonce=%s hash=%s", row.pk, row.nonce, signed.tx_hash)
    return locked


def _assign_nonce(lane: Lane, row: ChainTransaction) -> ChainTransaction | None:
    """Estimate gas and fees, then take the sender's next nonce. None if the intent can never be sent."""
    try:
        gas = lane.client.estimate_gas(sender=lane.sender, to=row.to, data=row.data_bytes, value=row.value)
    except TransactionReverted as exc:
        finish(row.pk, Status.FAILED, error=str(exc))
        return None
    fees = lane.client.fees()
    chain_pending = lane.client.nonce(lane.sender, "pending")
    with transaction.atomic():
        counter, _ = SenderNonce.objects.select_for_update().get_or_create(
            chain_id=lane.chain_id, sender=lane.sender, defaults={"next_nonce": chain_pending}
        )
        locked = ChainTransaction.objects.select_for_update().get(pk=row.pk)
        if locked.status != Status.PENDING or locked.nonce is not None:
            return locked
        # The chain's pending count (someone else may have used the key), but never a nonce that one
        # of our unfinished transactions holds (signed or not yet, maybe not in the node's pool).
        # The counter row is the lock and a record; it is not trusted above the chain (a reset
        # chain or a stale row would otherwise leave a gap that blocks the lane).
        held = ChainTransaction.objects.filter(
            chain_id=lane.chain_id,
            sender=lane.sender,
            status__in=[Status.PENDING, Status.SIGNED, Status.BROADCAST, Status.MINED],
            nonce__isnull=False,
        ).aggregate(highest=Max("nonce"))["highest"]
        nonce = max(chain_pending, -1 if held is None else held + 1)
        counter.next_nonce = nonce + 1
        counter.save(update_fields=["next_nonce", "updated_at"])
        locked.chain_id = lane.chain_id
        locked.sender = lane.sender
        locked.nonce = nonce
        locked.gas_limit = gas * (100 + GAS_HEADROOM_PERCENT) // 100
        locked.max_fee_per_gas = fees.max_fee_per_gas
        locked.max_priority_fee_per_gas = fees.max_priority_fee_per_gas
        locked.save(
            update_fields=[
                "chain_id", "sender", "nonce", "gas_limit", "max_fee_per_gas", "max_priority_fee_per_gas", "updated_at",
            ]
        )  # fmt: skip
    return locked


def _broadcast_in_nonce_order(lane: Lane, *, up_to: ChainTransaction | None = None) -> None:
    """Broadcast this sender's SIGNED transactions lowest nonce first, up to `up_to` (all if None).

    Stops at the first one the node refuses as "nonce too high": every nonce above it would be
    refused too, so they wait, signed and in place, until a lower one is mined (`transaction_confirm`
    then calls this again). On a node that buffers by nonce nothing is refused, and each transaction
    goes out as soon as it is signed. A lower one is sent along only if it was never tried or waits
    for its turn; one the node refused otherwise (fees, say) is left to its own submit task and the
    sweeper. Errors of `up_to` itself are raised; a lower one's are logged. Hold the lane lock.
    """
    from chain.lane.tasks import submit_transaction_task

    eligible = Q(attempts=0) | Q(error__startswith=WAITING_FOR_LOWER_NONCES)
    waiting = ChainTransaction.objects.filter(
        chain_id=lane.chain_id, sender=lane.sender, status=Status.SIGNED, nonce__isnull=False
    )
    if up_to is not None:
        eligible |= Q(pk=up_to.pk)
        waiting = waiting.filter(nonce__lte=up_to.nonce)
    waiting = waiting.filter(eligible)
    for row in waiting.order_by("nonce")[:SWEEP_BATCH]:
        is_target = up_to is not None and row.pk == up_to.pk
        try:
            _broadcast_current(lane, row)
        except ChainError as exc:
            if is_target:
                raise
            logger.warning("chain transaction not broadcast id=%s nonce=%s error=%s", row.pk, row.nonce, exc)
            continue
        status = ChainTransaction.objects.values_list("status", flat=True).get(pk=row.pk)
        if status == Status.SIGNED:  # refused: nonce too high
            if up_to is not None and not is_target:
                record_error(up_to, f"{WAITING_FOR_LOWER_NONCES}: nonce {row.nonce} is not accepted yet")
            return
        if status == Status.PENDING and not is_target:  # its nonce was proven used by another transaction
            publish(submit_transaction_task, str(row.pk))


def _broadcast_waiting(lane: Lane) -> None:
    """A nonce was mined: send what waited for it (refused as "nonce too high"), in nonce order."""
    if ChainTransaction.objects.filter(
        chain_id=lane.chain_id, sender=lane.sender, status=Status.SIGNED, error__startswith=WAITING_FOR_LOWER_NONCES
    ).exists():
        with lane.locked():
            _broadcast_in_nonce_order(lane)


def _broadcast_current(lane: Lane, row: ChainTransaction) -> None:
    """Send the stored current version. SIGNED -> BROADCAST, or resolve what the node told us."""
    version = SignedVersion.objects.get(tx_hash=row.tx_hash)
    ChainTransaction.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1)
    try:
        lane.client.send_raw_transaction(version.raw_bytes)
    except NonceTooLow:
        _resolve_used_nonce(lane, row)
        return
    except NonceTooHigh as exc:
        # The node does not buffer by nonce (Hedera's relay): a lower nonce is not mined yet, as the
        # node sees it. Same nonce, same bytes, sent again when a lower one is mined; no task retry.
        # (If the node merely lags behind a mined nonce, the sweeper's re-submission sends it later.)
        record_error(row, f"{WAITING_FOR_LOWER_NONCES}: {exc}")
        logger.info("chain transaction waits for lower nonces id=%s nonce=%s", row.pk, row.nonce)
        return
    except Underpriced as exc:
        record_error(row, str(exc))
        if "replacement" not in str(exc).lower():
            # Fees below what the node takes now, and never accepted: a new version with the same
            # nonce and current fees is safe (at most one version can be mined).
            _sign_replacement(lane, row, DEFAULT_FEE_BUMP_PERCENT)
        # else another sender's transaction holds our nonce in the pool: never push it out; once it
        # is mined the node answers "nonce too low" and the intent gets a new nonce.
        raise
    except ChainError as exc:
        record_error(row, str(exc))
        raise
    now = timezone.now()
    with transaction.atomic():
        SignedVersion.objects.filter(pk=version.pk, broadcast_at__isnull=True).update(broadcast_at=now)
        locked = ChainTransaction.objects.select_for_update().get(pk=row.pk)
        if locked.status == Status.SIGNED and locked.tx_hash == version.tx_hash:
            locked.transition(Status.BROADCAST, error="")
        _enqueue_confirm(row.pk)
    logger.info("chain transaction broadcast id=%s nonce=%s hash=%s", row.pk, row.nonce, version.tx_hash)


# --- receipts and used nonces ---------------------------------------------------------------------
def _enqueue_confirm(transaction_id: object) -> None:
    """Follow a broadcast (or found mined) transaction to its final state, after the caller's commit."""
    from chain.lane.tasks import confirm_transaction_task

    publish_on_commit(confirm_transaction_task, str(transaction_id), countdown=CONFIRM_DELAY_SECONDS)


def _confirm_from_receipts(lane: Lane, row: ChainTransaction) -> bool:
    """Record what a receipt of any signed version says (MINED, or final once deep enough)."""
    receipt = find_receipt(lane, row)
    if receipt is None:
        return False
    if record_receipt(lane, row.pk, receipt):
        _enqueue_confirm(row.pk)  # found mined by recovery: no confirm task was ever enqueued
    return True


def _resolve_used_nonce(lane: Lane, row: ChainTransaction) -> None:
    """The node says our nonce is used. Ours (a receipt for one of our versions), or someone else's?"""
    if _confirm_from_receipts(lane, row):
        return
    mined_nonce = lane.client.nonce(lane.sender, "latest")
    if row.nonce is None or mined_nonce <= row.nonce:
        raise NonceTooLow(f"nonce {row.nonce} is taken in the pool; will retry")
    if _confirm_from_receipts(lane, row):  # mined between the two looks
        return
    # Proven: the nonce was mined, and by none of our versions. Send the intent again, new nonce.
    with transaction.atomic():
        locked = ChainTransaction.objects.select_for_update().get(pk=row.pk)
        if locked.status in (Status.SIGNED, Status.BROADCAST) and locked.nonce == row.nonce:
            locked.transition(
                Status.PENDING,
                nonce=None,
                tx_hash="",
                error=f"nonce {row.nonce} was used by another transaction; resubmitting with a new nonce",
            )
    logger.warning("chain nonce consumed by another transaction id=%s nonce=%s", row.pk, row.nonce)


# --- confirm ---------------------------------------------------------------------------------------
def transaction_confirm(*, transaction_id: str) -> str:
    """Look for a receipt of any signed version and record it; recover a dropped or displaced one.

    Returns the status afterwards (SIGNED, BROADCAST or MINED means: still waiting). A receipt only
    makes the result final once CHAIN_CONFIRMATIONS blocks deep (MINED until then); a MINED one
    without a receipt any more was reorganised out and is waited for again. A mined nonce lets the
    transactions refused behind it ("nonce too high") go out.
    """
    row = ChainTransaction.objects.get(pk=transaction_id)
    if row.status not in (Status.SIGNED, Status.BROADCAST, Status.MINED):
        return row.status
    lane = current_lane()
    if _confirm_from_receipts(lane, row):
        _broadcast_waiting(lane)
        return ChainTransaction.objects.get(pk=transaction_id).status
    if row.status == Status.MINED:
        record_reorged_out(row)
        row.refresh_from_db()
    if row.status != Status.BROADCAST or row.nonce is None:
        return row.status  # SIGNED: the submit task (or the sweeper) broadcasts it
    if lane.client.nonce(lane.sender, "latest") <= row.nonce and _any_version_known(lane, row):
        return row.status  # waiting in the node's pool
    with lane.locked():
        row.refresh_from_db()
        if row.status != Status.BROADCAST or row.nonce is None:
            return row.status
        if lane.client.nonce(lane.sender, "latest") > row.nonce:
            _resolve_used_nonce(lane, row)
        elif not _any_version_known(lane, row):
            # Dropped from the pool (restart, eviction): send the same signed bytes again.
            version = SignedVersion.objects.get(tx_hash=row.tx_hash)
            logger.warning("chain transaction dropped, rebroadcasting id=%s hash=%s", row.pk, row.tx_hash)
            lane.client.send_raw_transaction(version.raw_bytes)
        row.refresh_from_db()
    if row.status == Status.PENDING:
        from chain.lane.tasks import submit_transaction_task

        publish(submit_transaction_task, str(row.pk))
    return row.status


def _any_version_known(lane: Lane, row: ChainTransaction) -> bool:
    """Whether the node still has one of the versions (a replacement it refused leaves the old one)."""
    hashes = (
        SignedVersion.objects.filter(transaction_id=row.pk).order_by("-created_at").values_list("tx_hash", flat=True)
    )
    return any(lane.client.transaction_known(tx_hash) for tx_hash in hashes)


# --- replace ---------------------------------------------------------------------------------------
def _sign_replacement(lane: Lane, row: ChainTransaction, fee_bump_percent: int) -> SignedVersion:
    """Sign and store a new version with the same nonce and higher fees; it becomes current.

    Once a cancel was requested, every new version is a cancel: a zero-value transfer to the sender
    itself, without data, so the original intent is never signed again.
    """
    cancelling = row.cancel_requested_at is not None
    fees = lane.client.fees()
    tip = max(bump(required(row.max_priority_fee_per_gas), fee_bump_percent), fees.max_priority_fee_per_gas)
    max_fee = max(bump(required(row.max_fee_per_gas), fee_bump_percent), fees.max_fee_per_gas, tip)
    replacement = ChainTransaction(
        pk=row.pk,
        to=lane.sender if cancelling else row.to,
        data="0x" if cancelling else row.data,
        value=0 if cancelling else row.value,
        nonce=row.nonce,
        gas_limit=CANCEL_GAS_LIMIT if cancelling else row.gas_limit,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=tip,
    )
    signed = lane.signer.sign_transaction(transaction_dict(lane, replacement))
    with transaction.atomic():
        locked = ChainTransaction.objects.select_for_update().get(pk=row.pk)
        replaceable = (
            (Status.SIGNED, Status.BROADCAST, Status.PENDING) if cancelling else (Status.SIGNED, Status.BROADCAST)
        )
        if locked.status not in replaceable or locked.nonce != row.nonce:
            raise ReplaceRefused(f"transaction {row.pk} is {locked.status}")
        if locked.cancel_requested_at is not None and not cancelling:
            raise ReplaceRefused(f"transaction {row.pk}: a cancel was requested meanwhile")
        version = SignedVersion.objects.create(
            transaction=locked,
            tx_hash=signed.tx_hash,
            raw="0x" + signed.raw.hex(),
            nonce=required(row.nonce),
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=tip,
            gas_limit=required(replacement.gas_limit),
            is_cancel=cancelling,
        )
        # a PENDING one (never signed: its signer refused it) becomes SIGNED with its cancel version
        moved = Status.SIGNED if locked.status == Status.PENDING else locked.status
        locked.transition(moved, tx_hash=signed.tx_hash, max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)
    logger.info("chain transaction replacement signed id=%s nonce=%s hash=%s", row.pk, row.nonce, signed.tx_hash)
    return version


def transaction_replace(*, transaction_id: str, fee_bump_percent: int = DEFAULT_FEE_BUMP_PERCENT) -> ChainTransaction:
    """Replace a stuck transaction: same nonce, fees raised by at least `fee_bump_percent`.

    Whichever version is mined counts; the others can never be (they share the nonce).
    """
    if fee_bump_percent < 10:
        raise ValueError("nodes refuse replacements with less than a 10% fee bump")
    lane = current_lane()
    with lane.locked():
        row = ChainTransaction.objects.get(pk=transaction_id)
        if row.status not in (Status.SIGNED, Status.BROADCAST):
            raise ReplaceRefused(f"only a signed or broadcast transaction can be replaced (it is {row.status})")
        if _confirm_from_receipts(lane, row):
            return ChainTransaction.objects.get(pk=transaction_id)
        version = _sign_replacement(lane, row, fee_bump_percent)
        row.refresh_from_db()
        try:
            lane.client.send_raw_transaction(version.raw_bytes)
        except NonceTooLow:
            _resolve_used_nonce(lane, row)
            return ChainTransaction.objects.get(pk=transaction_id)
        except NonceTooHigh as exc:  # stored; sent in nonce order once the lower ones are mined
            record_error(row, f"replacement waiting for the lower nonces to be mined: {exc}")
            return ChainTransaction.objects.get(pk=transaction_id)
        with transaction.atomic():
            SignedVersion.objects.filter(pk=version.pk).update(broadcast_at=timezone.now())
            locked = ChainTransaction.objects.select_for_update().get(pk=transaction_id)
            if locked.status == Status.SIGNED and locked.tx_hash == version.tx_hash:
                locked.transition(Status.BROADCAST)
            _enqueue_confirm(transaction_id)
    return ChainTransaction.objects.get(pk=transaction_id)


# --- cancel ----------------------------------------------------------------------------------------
def _check_cancellable(row: ChainTransaction) -> None:
    holds_a_nonce = row.status == Status.PENDING and row.nonce is not None  # e.g. its signer refused it
    if row.status not in (Status.SIGNED, Status.BROADCAST) and not holds_a_nonce:
        raise CancelRefused(
            "only a transaction that holds a nonce and is not mined yet can be cancelled "
            f"(this one is {row.status}{'' if row.nonce is not None else ', without a nonce'})"
        )


def transaction_cancel_request(*, transaction_id: str) -> ChainTransaction:
    """Record an operator's request to cancel a transaction; the chain queue cancels it after commit
    (`transaction_cancel`), and the sweeper re-enqueues a request the broker lost. No network I/O.

    Raises CancelRefused (nothing changed) unless it is SIGNED or BROADCAST.
    """
    from chain.lane.tasks import cancel_transaction_task

    with transaction.atomic():
        locked = ChainTransaction.objects.select_for_update().get(pk=transaction_id)
        _check_cancellable(locked)
        if locked.cancel_requested_at is None:
            locked.cancel_requested_at = timezone.now()
            locked.save(update_fields=["cancel_requested_at", "updated_at"])
        publish_on_commit(cancel_transaction_task, str(transaction_id))
    logger.info("chain transaction cancel requested id=%s nonce=%s", locked.pk, locked.nonce)
    return locked


def transaction_cancel(*, transaction_id: str, fee_bump_percent: int = DEFAULT_FEE_BUMP_PERCENT) -> ChainTransaction:
    """Free the nonce of a transaction that will never be mined (the node refuses it, its fee is
    too low, ...) while every later transaction of its sender waits behind it.

    Signs a zero-value transfer to the sender itself, without data, at the SAME nonce, with fees
    raised by at least `fee_bump_percent` (enough to replace it in a node's pool), stores it as a
    version of the transaction, then broadcasts it. Whichever version is mined counts: the cancel
    ends it CANCELLED, the original CONFIRMED or REVERTED as usual, and the purpose's handler is
    called with either. The original intent is never signed again. Cancelling again re-sends the
    stored cancel; `transaction_replace` raises its fees.
    """
    if fee_bump_percent < 10:
        raise ValueError("nodes refuse replacements with less than a 10% fee bump")
    lane = current_lane()
    with lane.locked():
        row = ChainTransaction.objects.get(pk=transaction_id)
        _check_cancellable(row)
        if row.sender != lane.sender:
            # Only its own key can sign at its nonce: drop the request (else the sweeper re-sends it forever).
            message = f"not cancelled: signed by {row.sender}, the configured signer {lane.sender} cannot cancel it"
            ChainTransaction.objects.filter(pk=row.pk).update(
                cancel_requested_at=None, error=message, updated_at=timezone.now()
            )
            raise CancelRefused(message)
        if _confirm_from_receipts(lane, row):
            return ChainTransaction.objects.get(pk=transaction_id)  # mined meanwhile: the original counts
        if row.cancel_requested_at is None:
            ChainTransaction.objects.filter(pk=row.pk, cancel_requested_at__isnull=True).update(
                cancel_requested_at=timezone.now(), updated_at=timezone.now()
            )
            row.refresh_from_db()
        current = SignedVersion.objects.filter(transaction_id=row.pk, tx_hash=row.tx_hash).first()
        version = (
            current if current is not None and current.is_cancel else _sign_replacement(lane, row, fee_bump_percent)
        )
        row.refresh_from_db()
        logger.warning("chain transaction cancel sent id=%s nonce=%s hash=%s", row.pk, row.nonce, version.tx_hash)
        return _send_version(lane, row, version)


def _send_version(lane: Lane, row: ChainTransaction, version: SignedVersion) -> ChainTransaction:
    """Broadcast a stored version (caller holds the lane lock); SIGNED -> BROADCAST once a node took it."""
    try:
        lane.client.send_raw_transaction(version.raw_bytes)
    except NonceTooLow:
        _resolve_used_nonce(lane, row)
        return ChainTransaction.objects.get(pk=row.pk)
    except ChainError as exc:
        record_error(row, str(exc))
        raise
    with transaction.atomic():
        SignedVersion.objects.filter(pk=version.pk, broadcast_at__isnull=True).update(broadcast_at=timezone.now())
        locked = ChainTransaction.objects.select_for_update().get(pk=row.pk)
        if locked.status == Status.SIGNED and locked.tx_hash == version.tx_hash:
            locked.transition(Status.BROADCAST, error="")
        _enqueue_confirm(row.pk)
    return ChainTransaction.objects.get(pk=row.pk)


# --- handlers ------------------------------------------------------------------------------------
def transaction_handler_rerun(*, transaction_id: str) -> ChainTransaction:
    """Run the purpose's handler again for a final transaction whose handler failed; the outcome is
    recorded on the row like the first run's. A transaction whose handler did not fail is returned
    unchanged (nothing runs twice)."""
    with transaction.atomic():
        locked = ChainTransaction.objects.select_for_update().get(pk=transaction_id)
        if locked.is_final and locked.handler_error:
            run_handler(locked, again=True)
    return locked


def _failed_handlers_due(stale_after: datetime.timedelta) -> list[ChainTransaction]:
    """Final transactions whose handler failed and may run again now: the n-th re-run waits
    `stale_after` x 2^(n-1) after the last run, until HANDLER_MAX_ATTEMPTS runs."""
    now = timezone.now()
    failed = (
        ChainTransaction.objects.filter(status__in=Status.final(), handler_attempts__lt=HANDLER_MAX_ATTEMPTS)
        .exclude(handler_error="")
        .order_by("updated_at")[:SWEEP_BATCH]
    )
    return [row for row in failed if row.updated_at <= now - stale_after * 2 ** max(0, row.handler_attempts - 1)]


def _alert_handler_gave_up(row: ChainTransaction) -> None:
    send_alert(
        cause=f"chain-handler-failed:{row.purpose}",
        title="Chain transaction handler keeps failing",
        description=(
            f"The {row.purpose} handler of chain transaction {row.pk} failed {row.handler_attempts} times and "
            f"the sweeper stopped running it. The transaction is recorded as {row.status}, but what its handler "
            "does (settle a payout batch, a withdrawal, ...) has not happened. Fix the cause, then select the "
            "transaction in Chain transactions and run Run handler again."
        ),
        fields=[
            AlertField("transaction", str(row.pk)),
            AlertField("purpose", row.purpose),
            AlertField("status", str(row.status)),
            AlertField("error", row.handler_error),
        ],
    )


# --- sweep ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepResult:
    resubmitted: int
    checked: int
    finished: int
    handlers_rerun: int = 0
    cancels_resent: int = 0
    halted: int = 0


@contextmanager
def _on_its_own(step: str, transaction_id: object) -> Iterator[None]:
    """One row's work in the sweep: whatever it raises is logged, and the sweep goes on with the next."""
    try:
        yield
    except ChainError as exc:
        logger.warning("sweep could not %s id=%s error=%s", step, transaction_id, exc)
    except Exception:
        logger.exception("sweep failed to %s id=%s", step, transaction_id)


def transaction_sweep(*, stale_after: datetime.timedelta = SWEEP_STALE_AFTER) -> SweepResult:
    """Re-enqueue submissions and cancel requests the broker lost (untouched for `stale_after`),
    confirm every BROADCAST or MINED transaction (receipts, finality, reorgs, dropped or displaced
    ones), run failed handlers again, and alert about halted lanes (CHAIN_LANE_HALTED_AFTER_SECONDS
    without a receipt).

    Each row is handled on its own: a row that raises (a chain error, a lock timeout, a bug) is
    logged and the sweep goes on with the next one.
    """
    from chain.lane.tasks import cancel_transaction_task, submit_transaction_task

    cutoff = timezone.now() - stale_after
    stale = list(
        ChainTransaction.objects.filter(status__in=[Status.PENDING, Status.SIGNED], updated_at__lte=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for transaction_id in stale:
        with _on_its_own("resubmit", transaction_id):
            publish(submit_transaction_task, str(transaction_id))
    lost_cancels = list(
        ChainTransaction.objects.filter(status__in=[Status.SIGNED, Status.BROADCAST], cancel_requested_at__lte=cutoff)
        .exclude(versions__is_cancel=True)
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for transaction_id in lost_cancels:
        with _on_its_own("re-enqueue the cancel of", transaction_id):
            publish(cancel_transaction_task, str(transaction_id))
    broadcast = list(
        ChainTransaction.objects.filter(status__in=[Status.BROADCAST, Status.MINED])
        .order_by("nonce")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    finished = 0
    for transaction_id in broadcast:
        with _on_its_own("confirm", transaction_id):
            finished += transaction_confirm(transaction_id=str(transaction_id)) in Status.final()
    handlers_rerun = 0
    for row in _failed_handlers_due(stale_after):
        with _on_its_own("run the handler of", row.pk):
            after = transaction_handler_rerun(transaction_id=str(row.pk))
            handlers_rerun += 1
            if after.handler_error and after.handler_attempts >= HANDLER_MAX_ATTEMPTS:
                _alert_handler_gave_up(after)
    for stuck in stuck_transactions()[:20]:
        logger.warning(
            "chain transaction stuck id=%s nonce=%s hash=%s broadcast_at=%s: replace it in the admin",
            stuck.pk, stuck.nonce, stuck.tx_hash, stuck.broadcast_at.isoformat() if stuck.broadcast_at else "",
        )  # fmt: skip
    halted = halted_lanes(older_than=datetime.timedelta(seconds=settings.CHAIN_LANE_HALTED_AFTER_SECONDS))
    for lane in halted:
        _alert_halted_lane(lane)
    return SweepResult(
        resubmitted=len(stale),
        checked=len(broadcast),
        finished=finished,
        handlers_rerun=handlers_rerun,
        cancels_resent=len(lost_cancels),
        halted=len(halted),
    )


def _alert_halted_lane(halted: HaltedLane) -> None:
    row = halted.transaction
    minutes = int((timezone.now() - halted.waiting_since).total_seconds() // 60)
    send_alert(
        cause=f"chain-lane-halted:{row.chain_id}:{row.sender}",
        title="Chain lane halted",
        description=(
            f"Chain transaction {row.pk} ({row.purpose}, {row.status}) holds nonce {row.nonce} of {row.sender} "
            f"and has had no receipt for {minutes} min; {halted.waiting_behind} later transaction(s) of this "
            "sender wait behind it, whatever their asset. In the admin, Chain transactions, select it and run "
            "Replace stuck transaction (same call, higher fees) if it can still be mined, or Cancel transaction "
            "(a zero-value transfer to itself at that nonce) if it never will, or "
            f"POST /api/v1/chain/transactions/{row.pk}/cancel. A cancelled transaction ends CANCELLED and its "
            "purpose's handler is told (a payout batch's holders then fail and can be retried)."
        ),
        fields=[
            AlertField("transaction", str(row.pk)),
            AlertField("nonce", str(row.nonce)),
            AlertField("sender", row.sender),
            AlertField("current hash", row.tx_hash),
            AlertField("last error", row.error),
        ],
    )
