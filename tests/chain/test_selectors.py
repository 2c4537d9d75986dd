"""Lane reads for metrics and alerts."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from chain.models import ChainTransaction
from chain.selectors import stuck_transactions, transaction_status_counts

Status = ChainTransaction.Status


@pytest.mark.django_db
def test_status_counts_and_stuck_transactions() -> None:
    # given
    now = timezone.now()
    for key, status, broadcast_at in [
        ("a", Status.BROADCAST, now - datetime.timedelta(minutes=10)),
        ("b", Status.BROADCAST, now),
        ("c", Status.CONFIRMED, now - datetime.timedelta(minutes=10)),
        ("d", Status.PENDING, None),
    ]:
        ChainTransaction.objects.create(
            intent_key=key, purpose="test", to="0x" + "22" * 20, data="0x", status=status, broadcast_at=broadcast_at
        )
    # when
    counts = transaction_status_counts()
    stuck = list(stuck_transactions().values_list("intent_key", flat=True))
    # then
    assert counts == {
        "PENDING": 1, "SIGNED": 0, "BROADCAST": 2, "MINED": 0, "CONFIRMED": 1, "REVERTED": 0, "FAILED": 0,
        "CANCELLED": 0,
    }  # fmt: skip
    assert stuck == ["a"]
