"""Reads about the submission lane, for the admin, metrics and alerts."""

from __future__ import annotations

import datetime

from django.db.models import Count, QuerySet
from django.utils import timezone

from chain.lane.models import ChainTransaction

STUCK_AFTER = datetime.timedelta(minutes=5)


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
