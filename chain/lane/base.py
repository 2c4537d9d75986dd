"""The lane's building blocks: configuration, the per-sender lane (client, signer, lock), the
transaction handlers, and how a receipt is recorded (MINED, or a final state that runs the handler).

They read and write rows and return what they found; they publish no task. Deciding what happens
next (a confirm task, a resubmission) is `chain.lane.services`' job; nothing outside the lane should
need these.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chain.client import ChainClient, Receipt
from chain.errors import ChainError, TransientChainError
from chain.lane.models import ChainTransaction, SignedVersion
from chain.signers import Signer, get_signer
from config.errors import Conflict
from config.locks import redis_lock

logger = logging.getLogger(__name__)

Status = ChainTransaction.Status
TransactionHandler = Callable[[ChainTransaction], None]

GAS_HEADROOM_PERCENT = 20
DEFAULT_FEE_BUMP_PERCENT = 15  # nodes want at least +10% on both fees to replace a pending transaction
CANCEL_GAS_LIMIT = 21_000  # a plain transfer without data costs exactly this on every EVM chain
# The Redis lane lock keeps one sender's submissions in order; correctness does not depend on it
# (nonce rows and transaction rows are locked in PostgreSQL), so it may expire: a worker that died
# holding it delays that sender's lane by at most LANE_LOCK_TIMEOUT seconds.
LANE_LOCK_TIMEOUT = 30
LANE_LOCK_WAIT = 20  # seconds a submission waits for the lane before it retries later
CONFIRM_DELAY_SECONDS = 2
SWEEP_STALE_AFTER = datetime.timedelta(seconds=30)
SWEEP_BATCH = 500
# Runs of a failing handler (the first one included) before the sweeper stops and alerts; the
# sweeper's n-th re-run waits SWEEP_STALE_AFTER x 2^(n-1), so five runs span about eight minutes.
HANDLER_MAX_ATTEMPTS = 5
ERROR_MAX_CHARS = 2000

_handlers: dict[str, TransactionHandler] = {}
_chain_ids: dict[str, int] = {}


class LaneBusy(TransientChainError):
    """Another worker holds this sender's lane; try again shortly."""


class ReplaceRefused(ChainError, Conflict):
    """Only a signed or broadcast transaction that is not yet mined can be replaced (a 409 in the API)."""


class CancelRefused(ReplaceRefused):
    """Only a signed or broadcast transaction that is not yet mined, signed by this signer, can be cancelled."""


def register_transaction_handler(purpose: str, handler: TransactionHandler) -> None:
    """Call `handler(transaction)` when a transaction of `purpose` reaches a final state (CONFIRMED,
    REVERTED, FAILED or CANCELLED), inside the database transaction that records that state, in its
    own savepoint (register in ready()). CONFIRMED and REVERTED come from a receipt CHAIN_CONFIRMATIONS
    blocks deep, never a shallower one.

    If it raises, its writes are undone, the state is recorded anyway, the error is kept on the row
    (`handler_error`) and the sweeper runs it again later: it must be idempotent.
    """
    _handlers[purpose] = handler


def unregister_transaction_handler(purpose: str) -> None:
    """Remove the handler of `purpose` (tests and app reloads)."""
    _handlers.pop(purpose, None)


# --- the lane: client, signer and lock of one sender ----------------------------------------------
@dataclass(frozen=True)
class Lane:
    """Everything needed to submit for the configured signer on the configured chain."""

    client: ChainClient
    signer: Signer
    chain_id: int
    sender: str

    @contextmanager
    def locked(self) -> Iterator[None]:
        with sender_lock(self.chain_id, self.sender):
            yield


@contextmanager
def sender_lock(chain_id: int, sender: str) -> Iterator[None]:
    """The Redis lock that orders everything one sender sends on one chain."""
    name = f"chain-lane:{chain_id}:{sender}"
    with redis_lock(name, timeout=LANE_LOCK_TIMEOUT, blocking_timeout=LANE_LOCK_WAIT) as acquired:
        if not acquired:
            raise LaneBusy(f"lane {sender} busy")
        yield


def current_lane() -> Lane:
    """The configured client and signer; the chain id is asked once per process and RPC URL and
    must match CHAIN_ID when that is set (signing for another chain would only be refused later)."""
    client = ChainClient.from_settings()
    signer = get_signer()
    chain_id = _chain_ids.get(client.rpc_url)
    if chain_id is None:
        chain_id = _chain_ids[client.rpc_url] = client.chain_id()
    if settings.CHAIN_ID is not None and settings.CHAIN_ID != chain_id:
        raise ChainError(f"CHAIN_ID is {settings.CHAIN_ID} but the RPC serves chain {chain_id}")
    return Lane(client=client, signer=signer, chain_id=chain_id, sender=signer.address)


def transaction_dict(lane: Lane, row: ChainTransaction) -> dict[str, Any]:
    return {
        "type": 2,
        "chainId": lane.chain_id,
        "nonce": row.nonce,
        "gas": row.gas_limit,
        "maxFeePerGas": row.max_fee_per_gas,
        "maxPriorityFeePerGas": row.max_priority_fee_per_gas,
        "to": row.to,
        "value": row.value,
        "data": row.data_bytes,
    }


# --- receipts ----------------------------------------------------------------------------------
def find_receipt(lane: Lane, row: ChainTransaction) -> Receipt | None:
    for version in SignedVersion.objects.filter(transaction_id=row.pk).order_by("-created_at"):
        receipt = lane.client.get_receipt(version.tx_hash)
        if receipt is not None:
            return receipt
    return None


def receipt_is_final(lane: Lane, receipt: Receipt) -> bool:
    """CHAIN_CONFIRMATIONS blocks on top of the receipt's block (as the listener stays behind the
    head), and that block still canonical. The hash is read after the head, so a reorg between the
    receipt and the head shows up as another hash rather than as depth."""
    confirmations = settings.CHAIN_CONFIRMATIONS
    if confirmations <= 0:
        return True
    if lane.client.block_number() - receipt.block_number < confirmations:
        return False
    return lane.client.block_hash(receipt.block_number) == receipt.block_hash


def record_receipt(lane: Lane, transaction_id: Any, receipt: Receipt) -> bool:
    """A receipt deep enough is the final result (and runs the handler); a shallower one only says
    MINED, because its block may still be reorganised away. True when the transaction still needs a
    confirm task (see `record_mined`)."""
    if not receipt_is_final(lane, receipt):
        return record_mined(transaction_id, receipt)
    status = Status.CONFIRMED if receipt.succeeded else Status.REVERTED
    finish(
        transaction_id,
        status,
        tx_hash=receipt.tx_hash,
        block_number=receipt.block_number,
        block_hash=receipt.block_hash,
        gas_used=receipt.gas_used,
        error="" if receipt.succeeded else "reverted on chain",
    )
    return False


def record_mined(transaction_id: Any, receipt: Receipt) -> bool:
    """MINED in the receipt's block (again, or in another block after a reorg); no handler runs.

    True when it was SIGNED: found mined by recovery, so no confirm task was ever enqueued for it and
    the caller enqueues one (after this commit) to follow it to its final state.
    """
    with transaction.atomic():
        locked = ChainTransaction.objects.select_for_update().get(pk=transaction_id)
        if locked.status not in (Status.SIGNED, Status.BROADCAST, Status.MINED):
            return False
        if (locked.status, locked.tx_hash, locked.block_hash) == (Status.MINED, receipt.tx_hash, receipt.block_hash):
            return False
        needs_confirm = locked.status == Status.SIGNED
        locked.transition(
            Status.MINED,
            tx_hash=receipt.tx_hash,
            block_number=receipt.block_number,
            block_hash=receipt.block_hash,
            gas_used=receipt.gas_used,
            error="",
        )
    logger.info(
        "chain transaction mined id=%s block=%s hash=%s confirmations_needed=%s",
        transaction_id, receipt.block_number, receipt.tx_hash, settings.CHAIN_CONFIRMATIONS,
    )  # fmt: skip
    return needs_confirm


def record_reorged_out(row: ChainTransaction) -> None:
    """No receipt any more for a MINED transaction: its block left the canonical chain. Wait for it
    again (it may be back in the pool, or dropped and then re-sent from the stored bytes)."""
    with transaction.atomic():
        locked = ChainTransaction.objects.select_for_update().get(pk=row.pk)
        if locked.status != Status.MINED or locked.block_hash != row.block_hash:
            return  # someone saw it mined again meanwhile
        locked.transition(
            Status.BROADCAST,
            block_number=None,
            block_hash="",
            gas_used=None,
            error=f"block {row.block_number} ({row.block_hash}) left the canonical chain; waiting to be mined again",
        )
    logger.warning(
        "chain transaction reorganised out id=%s block=%s block_hash=%s", row.pk, row.block_number, row.block_hash
    )


def finish(transaction_id: Any, status: str, **fields: Any) -> None:
    """Record a final state and run the purpose's handler in the same database transaction.

    The state is a fact about the chain: a handler that raises never keeps it from being recorded.
    """
    with transaction.atomic():
        locked = ChainTransaction.objects.select_for_update().get(pk=transaction_id)
        if locked.is_final:
            return
        if status in (Status.CONFIRMED, Status.REVERTED) and _is_cancel_version(locked, fields.get("tx_hash")):
            status = Status.CANCELLED
            fields = {
                **fields,
                "error": f"cancelled: nonce {locked.nonce} was taken by its cancel (a zero-value transfer to itself)",
            }
        locked.transition(status, **fields)
        run_handler(locked)
    logger.info("chain transaction %s id=%s hash=%s", status.lower(), transaction_id, fields.get("tx_hash", ""))


def _is_cancel_version(row: ChainTransaction, tx_hash: str | None) -> bool:
    return (
        bool(tx_hash) and SignedVersion.objects.filter(transaction_id=row.pk, tx_hash=tx_hash, is_cancel=True).exists()
    )


def run_handler(locked: ChainTransaction, *, again: bool = False) -> bool:
    """Run the purpose's handler on a final row the caller locked, in a savepoint, and record the
    outcome on the row (`handler_error`, `handler_attempts`). True when it ran fine.

    Never raises what the handler raised: like the listener's processors, one app's fault is
    recorded and logged, and whoever called (a confirm task, the sweeper) goes on. `again`: a
    re-run, where a purpose with no handler (any more) is an error rather than nothing to do.
    """
    handler = _handlers.get(locked.purpose)
    if handler is None and not again:
        return True
    locked.handler_attempts += 1
    try:
        if handler is None:
            raise LookupError(f"no handler is registered for purpose {locked.purpose!r}")
        with transaction.atomic():
            handler(locked)
    except Exception as exc:
        locked.handler_error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]
        logger.exception(
            "chain transaction handler failed id=%s purpose=%s status=%s attempt=%s",
            locked.pk, locked.purpose, locked.status, locked.handler_attempts,
        )  # fmt: skip
    else:
        locked.handler_error = ""
    locked.save(update_fields=["handler_error", "handler_attempts", "updated_at"])
    return not locked.handler_error


# --- small helpers -----------------------------------------------------------------------------
def required(value: int | None) -> int:
    if value is None:
        raise ChainError("a signed transaction lacks its nonce, gas or fees")
    return int(value)


def bump(value: int, percent: int) -> int:
    return max(value + 1, -(-value * (100 + percent) // 100))


def record_error(row: ChainTransaction, message: str) -> None:
    ChainTransaction.objects.filter(pk=row.pk).update(error=message[:2000], updated_at=timezone.now())
