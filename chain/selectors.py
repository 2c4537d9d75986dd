"""Reads about the submission lane, for the admin, metrics and alerts."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone

from chain.lane.models import ChainTransaction
from config.errors import NotFound, parse_id

STUCK_AFTER = datetime.timedelta(minutes=5)


def transaction_get(transaction_id: str | uuid.UUID) -> ChainTransaction:
    """The transaction with this id (with its versions); `NotFound`, also for an id that is no UUID."""
    parsed = parse_id(transaction_id, what="chain transaction")
    row = ChainTransaction.objects.prefetch_related("versions").filter(pk=parsed).first()
    if row is None:
        raise NotFound("chain transaction not found")
    return row


def transaction_status_counts() -> dict[str, int]:
    """Number of chain transactions per status (every status present, zero included)."""
    counts = dict.fromkeys(ChainTransaction.Status.values, 0)
    for row in ChainTransaction.objects.values("status").annotate(total=Count("pk")):
        counts[row["status"]] = row["total"]
    return counts


def stuck_transactions(*, older_than: datetime.timedelta = STUCK_AFTER) -> QuerySet[ChainTransaction]:
    """Broadcast longer than `older_than` ago and still without a receipt: candidates to replace."""
    return ChainTransaction.objects.filter(
        status=ChainTransaction.Status.BROADCAST, broadcast_at__lte=timezone.now() - older_than
    ).order_by("nonce")


@dataclass(frozen=True)
class HaltedLane:
    """A sender whose lowest unfinished nonce gets no receipt: everything it sends later waits."""

    transaction: ChainTransaction  # the one holding that nonce
    waiting_since: datetime.datetime
    waiting_behind: int  # later unfinished transactions of the same sender


def halted_lanes(*, older_than: datetime.timedelta) -> list[HaltedLane]:
    """Senders whose lowest unfinished nonce (signed, broadcast, or taken but never signed) has had no
    receipt for longer than `older_than`,
    counted from when it was broadcast (or signed) or from the sender's last mined transaction,
    whichever is later: a long queue that keeps moving is busy, not halted."""
    Status = ChainTransaction.Status
    cutoff = timezone.now() - older_than
    # PENDING with a nonce: it took one, and was never signed (its signer refused it, say)
    unfinished = ChainTransaction.objects.filter(
        status__in=[Status.PENDING, Status.SIGNED, Status.BROADCAST], nonce__isnull=False
    )
    lanes = (
        unfinished.values("chain_id", "sender")
        .annotate(lowest=Min("nonce"), waiting=Count("pk"))
        .order_by("chain_id", "sender")
    )
    halted: list[HaltedLane] = []
    for lane in lanes:
        first = unfinished.filter(chain_id=lane["chain_id"], sender=lane["sender"], nonce=lane["lowest"]).first()
        if first is None:
            continue
        last_mined = ChainTransaction.objects.filter(
            chain_id=lane["chain_id"],
            sender=lane["sender"],
            status__in=[Status.CONFIRMED, Status.REVERTED, Status.CANCELLED],
        ).aggregate(at=Max("finished_at"))["at"]
        since = first.broadcast_at or first.signed_at or first.created_at
        if last_mined is not None and last_mined > since:
            since = last_mined
        if since <= cutoff:
            halted.append(HaltedLane(transaction=first, waiting_since=since, waiting_behind=lane["waiting"] - 1))
    return halted
