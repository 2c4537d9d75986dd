"""Confirming batches: apply on-chain results to holder payments, roll statuses up.

Two paths feed the same idempotent function, `payout_results_apply`:
- the chain lane's handler for purpose `payout_batch` (final state of the batch transaction); for a
  confirmed one, `batch_reconcile` reads the receipt outside any DB transaction, decodes its logs
  and applies them;
- the listener's processors for HolderPaid / HolderPaymentFailed / PayoutCompleted /
  DistributionExecuted.
SUCCESS is final and always wins (money moved); a failure only applies to holders still open in
the batch's CURRENT attempt, so a stale event from an older attempt never undoes a retry.
Counters on the distribution move with `F()` by the number of rows that actually changed, so
progress (paid / failed / pending) is exact at every moment without counting a million rows.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from chain.models import ChainTransaction
from config.enqueue import publish_on_commit
from payouts import gateway
from payouts.models import BatchPayout, Distribution, HolderPayment

if TYPE_CHECKING:
    from chain.events import DecodedEvent
    from chain.models import ChainTransaction

logger = logging.getLogger(__name__)

PaymentStatus = HolderPayment.Status
OPEN = (PaymentStatus.PENDING, PaymentStatus.RETRYING)
FAILURE_REASONS = {
    1: "insufficient payout contract balance",
    2: "already paid",
    3: "token transfer failed",
    4: "the payment would exceed the distribution's registered total",
    5: "the holder holds fewer tokens than the cash-out redeems",
}
ALREADY_PAID = 2
RETRY_DELAY = timedelta(hours=1)
PAYOUT_EVENTS = (
    "HolderPaid",
    "HolderPaymentFailed",
    "PayoutCompleted",
    "DistributionRegistered",
    "DistributionExecuted",
)


def _hex32(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


@dataclass
class _Results:
    paid: dict[str, int] = field(default_factory=dict)  # address -> amount
    failed: dict[str, int] = field(default_factory=dict)  # address -> reason
    batch_hexes: set[str] = field(default_factory=set)


def payout_results_apply(*, events: Iterable[DecodedEvent], tx_hash: str = "") -> None:
    """Apply decoded payout-contract events (any order, any repetition).

    Only the distribution's own payout contract speaks for it: every lookup is keyed by the
    emitting contract as well as by the on-chain id, so a log from any other contract (a payment
    token, another asset's payout contract) that names this distribution or batch moves nothing.
    """
    by_distribution: dict[tuple[str, str], _Results] = defaultdict(_Results)  # (emitter, distribution id)
    completed_batches: set[tuple[str, str]] = set()  # (emitter, batch id)
    executed: set[tuple[str, str]] = set()  # (emitter, distribution id)
    registered: dict[tuple[str, str], int] = {}  # (emitter, distribution id) -> total
    for event in events:
        args = event.args
        emitter = gateway.normalize(event.contract_address)
        if event.event_name == "HolderPaid":
            results = by_distribution[emitter, _hex32(args["distributionId"])]
            results.paid[gateway.normalize(args["holder"])] = int(args["amount"])
            results.batch_hexes.add(_hex32(args["batchId"]))
        elif event.event_name == "HolderPaymentFailed":
            results = by_distribution[emitter, _hex32(args["distributionId"])]
            address = gateway.normalize(args["holder"])
            if int(args["reason"]) == ALREADY_PAID:
                results.paid.setdefault(address, 0)  # paid by an earlier batch: money already moved
            else:
                results.failed[address] = int(args["reason"])
            results.batch_hexes.add(_hex32(args["batchId"]))
        elif event.event_name == "PayoutCompleted":
            completed_batches.add((emitter, _hex32(args["batchId"])))
        elif event.event_name == "DistributionExecuted":
            executed.add((emitter, _hex32(args["distributionId"])))
        elif event.event_name == "DistributionRegistered":
            registered[emitter, _hex32(args["distributionId"])] = int(args["totalAmount"])
    _check_registered_totals(registered)
    with transaction.atomic():
        # Only the distribution's own payout contract speaks for it: every lookup is by (emitter, id).
        own = {
            key: Distribution.objects.filter(chain_distribution_id=key[1], asset__payout_contract_address=key[0])
            .values_list("id", flat=True)
            .first()
            for key in by_distribution.keys() | executed
        }
        completed = Q(pk__in=[])
        for emitter, batch_hex in completed_batches:
            completed |= Q(chain_batch_id=batch_hex, distribution__asset__payout_contract_address=emitter)
        completed_ids = list(BatchPayout.objects.filter(completed).values_list("id", "distribution_id"))
        lock_distributions({pk for pk in own.values() if pk} | {pk for _, pk in completed_ids})
        touched: set[uuid.UUID] = set()
        batches = Q(pk__in=[b for b, _ in completed_ids])
        for key, results in by_distribution.items():
            distribution_id = own[key]
            if distribution_id is None:
                logger.warning(
                    "payout event ignored: not from the payout contract of a known distribution chain_id=%s emitter=%s",
                    key[1],
                    key[0],
                )
                continue
            _mark_paid(distribution_id, results.paid, tx_hash)
            # A failure counts only for the attempt in flight: a batch put back to PENDING for a retry
            # still carries the old attempt's id until it is re-sent, and its late failure must not
            # fail the holders waiting for that retry.
            current = set(
                BatchPayout.objects.filter(
                    distribution_id=distribution_id,
                    chain_batch_id__in=results.batch_hexes,
                    status=BatchPayout.Status.IN_PROGRESS,
                ).values_list("number", flat=True)
            )
            _mark_failed(distribution_id, results.failed, batch_numbers=current)
            touched.add(distribution_id)
            batches |= Q(distribution_id=distribution_id, chain_batch_id__in=results.batch_hexes)
        rolled = list(BatchPayout.objects.filter(batches).order_by("id").values_list("id", "distribution_id"))
        for batch_id, _ in rolled:
            batch_roll_up(batch_id=batch_id, settle_open=False)
        touched.update(distribution_id for _, distribution_id in rolled)
        touched.update(pk for key, pk in own.items() if pk and key in executed)
        for distribution_id in sorted(touched):
            distribution_roll_up(distribution_id=distribution_id)


def lock_distributions(ids: Iterable[uuid.UUID]) -> None:
    """Lock distribution rows (in id order) before any of their batches or payments: the one lock
    order of every path that changes results (receipt, listener, lane handler, submitter), so two of
    them never wait on each other in a cycle."""
    list(Distribution.objects.select_for_update().filter(pk__in=list(ids)).order_by("pk").values_list("pk", flat=True))


def _check_registered_totals(registered: dict[tuple[str, str], int]) -> None:
    """The total our first batch registered on chain is the one we planned; anything else means
    someone else holding the payout role used our distribution's id first: say so loudly."""
    for (emitter, distribution_hex), total in registered.items():
        planned = (
            Distribution.objects.filter(chain_distribution_id=distribution_hex, asset__payout_contract_address=emitter)
            .values_list("computed_total", flat=True)
            .first()
        )
        if planned is not None and int(planned) != total:
            logger.error(
                "distribution registered on chain with another total chain_id=%s registered=%s planned=%s",
                distribution_hex,
                total,
                planned,
            )


def _mark_paid(distribution_id: uuid.UUID, paid: dict[str, int], tx_hash: str) -> None:
    if not paid:
        return
    now = timezone.now()
    # Lock the rows first (in address order: no deadlock between the receipt and listener paths),
    # so the counters move by what THIS call changed, even when both paths race on the same holders.
    changing = list(
        HolderPayment.objects.select_for_update()
        .filter(distribution_id=distribution_id, holder_address__in=list(paid))
        .exclude(status=PaymentStatus.SUCCESS)
        .order_by("holder_address")
        .values_list("holder_address", "status", "amount")
    )
    if not changing:
        return
    HolderPayment.MOVES.claim(
        HolderPayment.objects.filter(
            distribution_id=distribution_id, holder_address__in=[address for address, _, _ in changing]
        ),
        PaymentStatus.SUCCESS,
        tx_hash=tx_hash,
        last_error="",
        next_retry_at=None,
        updated_at=now,
    )
    # Amounts come from our own rows (an "already paid" notice carries none of ours).
    Distribution.objects.filter(pk=distribution_id).update(
        paid_count=F("paid_count") + len(changing),
        failed_count=F("failed_count") - sum(1 for _, status, _ in changing if status == PaymentStatus.FAILED),
        paid_amount=F("paid_amount") + sum(int(amount) for _, _, amount in changing),
        updated_at=now,
    )


def _mark_failed(distribution_id: uuid.UUID, failed: dict[str, int], *, batch_numbers: set[int]) -> None:
    if not failed or not batch_numbers:
        return
    now = timezone.now()
    by_reason: dict[int, list[str]] = defaultdict(list)
    for address, reason in failed.items():
        by_reason[reason].append(address)
    total = 0
    for reason, addresses in by_reason.items():
        total += HolderPayment.MOVES.claim(
            HolderPayment.objects.filter(
                distribution_id=distribution_id, batch_number__in=batch_numbers, holder_address__in=addresses
            ),
            PaymentStatus.FAILED,
            sources=OPEN,
            last_error=FAILURE_REASONS.get(reason, f"failed on chain (reason {reason})"),
            next_retry_at=now + RETRY_DELAY,
            updated_at=now,
        )
    if total:
        Distribution.objects.filter(pk=distribution_id).update(failed_count=F("failed_count") + total, updated_at=now)


def fail_open_payments(*, batch: BatchPayout, error: str) -> int:
    """The batch's transaction failed or reverted: every still-open holder in it failed."""
    now = timezone.now()
    count = HolderPayment.MOVES.claim(
        HolderPayment.objects.filter(distribution_id=batch.distribution_id, batch_number=batch.number),
        PaymentStatus.FAILED,
        sources=OPEN,
        last_error=error[:500],
        next_retry_at=now + RETRY_DELAY,
        updated_at=now,
    )
    if count:
        Distribution.objects.filter(pk=batch.distribution_id).update(
            failed_count=F("failed_count") + count, updated_at=now
        )
    return count


def batch_roll_up(*, batch_id: int, settle_open: bool, error: str = "") -> None:
    """COMPLETED / PARTIALLY_COMPLETED / FAILED once none of its holders is open.

    `settle_open`: the receipt is final, so holders it did not mention failed. A PENDING batch (no
    attempt in flight) is never settled that way, but once nothing in it is open (a late confirmation
    paid its retrying holders) it is rolled up too, so the submitter finds nothing left to send.
    """
    batch = BatchPayout.objects.select_for_update().get(pk=batch_id)
    if batch.status == BatchPayout.Status.PENDING and settle_open:
        return
    if settle_open:
        fail_open_payments(batch=batch, error=error or "no result for this holder in the receipt")
    counts = HolderPayment.objects.filter(distribution_id=batch.distribution_id, batch_number=batch.number).aggregate(
        paid=Count("id", filter=Q(status=PaymentStatus.SUCCESS)),
        failed=Count("id", filter=Q(status=PaymentStatus.FAILED)),
        open=Count("id", filter=Q(status__in=OPEN)),
    )
    if counts["open"]:
        return
    batch.mark_settled(paid=counts["paid"], failed=counts["failed"], error=error)


def distribution_roll_up(*, distribution_id: uuid.UUID) -> str | None:
    """COMPLETED when every holder is paid; FAILED when every holder is settled and some failed."""
    now = timezone.now()
    Status = Distribution.Status
    finished = Distribution.MOVES.claim(
        Distribution.objects.filter(pk=distribution_id, holders_count__isnull=False, paid_count=F("holders_count")),
        Status.COMPLETED,  # from IN_PROGRESS, or FAILED (a late confirmation paid the rest)
        finished_at=now,
        error="",
        updated_at=now,
    )
    outcome: str | None = Status.COMPLETED if finished else None
    if not finished:
        finished = Distribution.MOVES.claim(
            Distribution.objects.filter(pk=distribution_id, failed_count__gt=0)
            .alias(settled=F("paid_count") + F("failed_count"))
            .filter(settled=F("holders_count")),
            Status.FAILED,
            finished_at=now,
            updated_at=now,
        )
        outcome = Status.FAILED if finished else None
    if outcome:
        distribution = Distribution.objects.get(pk=distribution_id)
        if distribution.started_at and distribution.finished_at:
            distribution.execution_duration = distribution.finished_at - distribution.started_at
            distribution.save(update_fields=["execution_duration"])
        logger.info(
            "distribution finished distribution_id=%s status=%s paid=%s failed=%s",
            distribution_id,
            outcome,
            distribution.paid_count,
            distribution.failed_count,
        )
    return outcome


def payout_transaction_finished(chain_transaction: ChainTransaction) -> None:
    """Handler for purpose `payout_batch`, run inside the lane's transaction recording the final state."""
    from payouts.tasks import reconcile_batch_task

    parsed = gateway.parse_batch_intent_key(chain_transaction.intent_key)
    if parsed is None:
        return
    batch_id, attempt = parsed
    owner = BatchPayout.objects.filter(pk=batch_id).values_list("distribution_id", flat=True).first()
    if owner is not None:
        lock_distributions([owner])
    batch = BatchPayout.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None:
        logger.warning("payout transaction for an unknown batch intent_key=%s", chain_transaction.intent_key)
        return
    current = attempt == batch.attempts
    if current:
        batch.tx_hash = chain_transaction.tx_hash or ""
        batch.nonce = chain_transaction.nonce
        batch.save(update_fields=["tx_hash", "nonce", "updated_at"])
    status = str(chain_transaction.status)
    if status == "CONFIRMED":
        publish_on_commit(reconcile_batch_task, batch_id, attempt)
        return
    if current:
        _transaction_failed(batch, status=status, error=chain_transaction.error or "")


def _transaction_failed(batch: BatchPayout, *, status: str, error: str) -> None:
    if batch.status != BatchPayout.Status.IN_PROGRESS:
        return
    message = f"transaction {status.lower()}: {error or 'no reason given'}"
    batch_roll_up(batch_id=batch.id, settle_open=True, error=message)
    distribution_roll_up(distribution_id=batch.distribution_id)
    logger.warning("payout batch transaction failed batch_id=%s attempt=%s status=%s", batch.id, batch.attempts, status)


def batch_reconcile(*, batch_id: int, attempt: int) -> bool:
    """Read the confirmed receipt (no DB transaction open) and apply it. False: nothing to do yet."""

    chain_transaction = ChainTransaction.objects.filter(intent_key=gateway.batch_intent_key(batch_id, attempt)).first()
    if chain_transaction is None:
        return False
    status = str(chain_transaction.status)
    if status in ("REVERTED", "FAILED", "CANCELLED"):
        with transaction.atomic():
            lock_distributions(BatchPayout.objects.filter(pk=batch_id).values_list("distribution_id", flat=True))
            batch = BatchPayout.objects.select_for_update().get(pk=batch_id)
            if attempt == batch.attempts:
                _transaction_failed(batch, status=status, error=chain_transaction.error or "")
        return True
    if status != "CONFIRMED" or not chain_transaction.tx_hash:
        return False
    client = gateway.client()
    receipt = client.get_receipt(chain_transaction.tx_hash)
    if receipt is None:
        return False
    events = client.decode_logs(receipt)
    with transaction.atomic():
        payout_results_apply(events=events, tx_hash=chain_transaction.tx_hash)
        batch = BatchPayout.objects.select_for_update().get(pk=batch_id)
        if attempt == batch.attempts and batch.status == BatchPayout.Status.IN_PROGRESS:
            batch_roll_up(batch_id=batch_id, settle_open=True)
        distribution_roll_up(distribution_id=batch.distribution_id)
    return True
