"""Recurring series: occurrence times (month ends included) and the next occurrence on start."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from config.errors import Conflict
from payouts import services
from payouts.models import Asset, Distribution
from payouts.recurrence import add_months, latest_due_occurrence, occurrence_time
from tests.payouts.factories import make_distribution


@pytest.mark.parametrize(
    ("anchor", "recurrence", "n", "expected"),
    [
        (datetime(2025, 1, 31, 9, tzinfo=UTC), "MONTHLY", 1, datetime(2025, 2, 28, 9, tzinfo=UTC)),
        (datetime(2024, 1, 31, 9, tzinfo=UTC), "MONTHLY", 1, datetime(2024, 2, 29, 9, tzinfo=UTC)),
        (datetime(2025, 1, 31, 9, tzinfo=UTC), "MONTHLY", 2, datetime(2025, 3, 31, 9, tzinfo=UTC)),
        (datetime(2025, 1, 31, 9, tzinfo=UTC), "MONTHLY", 3, datetime(2025, 4, 30, 9, tzinfo=UTC)),
        (datetime(2025, 12, 31, 9, tzinfo=UTC), "MONTHLY", 2, datetime(2026, 2, 28, 9, tzinfo=UTC)),
        (datetime(2025, 11, 15, tzinfo=UTC), "MONTHLY", 14, datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2025, 3, 1, 23, tzinfo=UTC), "HOURLY", 2, datetime(2025, 3, 2, 1, tzinfo=UTC)),
        (datetime(2024, 2, 28, tzinfo=UTC), "DAILY", 1, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2025, 12, 29, tzinfo=UTC), "WEEKLY", 1, datetime(2026, 1, 5, tzinfo=UTC)),
        (datetime(2025, 5, 5, tzinfo=UTC), "DAILY", 0, datetime(2025, 5, 5, tzinfo=UTC)),
    ],
)
def test_occurrence_times(anchor: datetime, recurrence: str, n: int, expected: datetime) -> None:
    assert occurrence_time(anchor=anchor, recurrence=recurrence, occurrence=n) == expected


def test_month_ends_never_drift_over_a_year() -> None:
    # given an anchor at the end of January
    anchor = datetime(2025, 1, 31, tzinfo=UTC)
    # when
    days = [occurrence_time(anchor=anchor, recurrence="MONTHLY", occurrence=n).day for n in range(12)]
    # then each occurrence is the last day of its month
    assert days == [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    assert add_months(anchor, -1) == datetime(2024, 12, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "recurrence", "now", "expected"),
    [
        (datetime(2025, 1, 1, 9, tzinfo=UTC), "DAILY", datetime(2025, 1, 1, 8, 59, tzinfo=UTC), -1),
        (datetime(2025, 1, 1, 9, tzinfo=UTC), "DAILY", datetime(2025, 1, 1, 9, tzinfo=UTC), 0),
        (datetime(2025, 1, 1, 9, tzinfo=UTC), "DAILY", datetime(2025, 1, 31, 8, 59, tzinfo=UTC), 29),
        (datetime(2025, 1, 1, 9, tzinfo=UTC), "DAILY", datetime(2025, 1, 31, 9, tzinfo=UTC), 30),
        (datetime(2025, 1, 1, 9, tzinfo=UTC), "HOURLY", datetime(2025, 1, 2, 8, 30, tzinfo=UTC), 23),
        (datetime(2025, 1, 1, 9, tzinfo=UTC), "WEEKLY", datetime(2025, 1, 15, 9, tzinfo=UTC), 2),
        (datetime(2025, 1, 31, 9, tzinfo=UTC), "MONTHLY", datetime(2025, 2, 28, 8, tzinfo=UTC), 0),
        (datetime(2025, 1, 31, 9, tzinfo=UTC), "MONTHLY", datetime(2025, 2, 28, 9, tzinfo=UTC), 1),
        (datetime(2025, 1, 31, 9, tzinfo=UTC), "MONTHLY", datetime(2025, 3, 30, 9, tzinfo=UTC), 1),
        (datetime(2025, 1, 31, 9, tzinfo=UTC), "MONTHLY", datetime(2025, 3, 31, 9, tzinfo=UTC), 2),
        (datetime(2025, 1, 15, 9, tzinfo=UTC), "MONTHLY", datetime(2027, 1, 15, 8, tzinfo=UTC), 23),
    ],
)
def test_latest_due_occurrence(anchor: datetime, recurrence: str, now: datetime, expected: int) -> None:
    assert latest_due_occurrence(anchor=anchor, recurrence=recurrence, now=now) == expected


def test_latest_due_occurrence_agrees_with_occurrence_time_over_a_year() -> None:
    # given month-end, leap-day and hourly anchors, and every hour of a year after them
    for anchor, recurrence in (
        (datetime(2024, 1, 31, 12, tzinfo=UTC), "MONTHLY"),
        (datetime(2024, 2, 29, tzinfo=UTC), "MONTHLY"),
        (datetime(2024, 3, 3, 3, tzinfo=UTC), "WEEKLY"),
    ):
        for hours in range(0, 24 * 400, 7):
            now = anchor + timedelta(hours=hours)
            # when
            latest = latest_due_occurrence(anchor=anchor, recurrence=recurrence, now=now)
            # then it is due, and the one after it is not
            assert occurrence_time(anchor=anchor, recurrence=recurrence, occurrence=latest) <= now
            assert occurrence_time(anchor=anchor, recurrence=recurrence, occurrence=latest + 1) > now


def test_unknown_recurrence_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        occurrence_time(anchor=datetime(2025, 1, 1, tzinfo=UTC), recurrence="YEARLY", occurrence=1)


@pytest.mark.django_db
def test_starting_a_recurring_distribution_creates_the_next_occurrence_once(funded_asset: Asset) -> None:
    # given a monthly series anchored on Jan 31 whose first occurrence is due
    anchor = datetime(2025, 1, 31, 12, tzinfo=UTC)
    first = make_distribution(
        asset=funded_asset,
        subtype=Distribution.Subtype.RECURRING,
        recurrence=Distribution.Recurrence.MONTHLY,
        series_id=uuid.uuid4(),
        recurrence_anchor=anchor,
        scheduled_at=anchor,
    )
    # when it starts (and someone tries again)
    services.distribution_start(distribution_id=first.pk)
    with pytest.raises(Conflict):
        services.distribution_start(distribution_id=first.pk)
    # then exactly one next occurrence exists, on Feb 28, SCHEDULED, same terms
    following = Distribution.objects.exclude(pk=first.pk).get()
    assert (following.status, following.occurrence, following.scheduled_at) == (
        "SCHEDULED",
        1,
        datetime(2025, 2, 28, 12, tzinfo=UTC),
    )
    assert (following.amount, following.series_id) == (first.amount, first.series_id)
    # when that one starts, the third is Mar 31 (from the original anchor, not Feb 28 + 1 month)
    services.distribution_start(distribution_id=following.pk)
    third = Distribution.objects.get(series_id=first.series_id, occurrence=2)
    assert third.scheduled_at == datetime(2025, 3, 31, 12, tzinfo=UTC)


@pytest.mark.django_db
def test_scheduled_run_starts_every_due_one_even_long_overdue_and_one_failure_does_not_stop_the_rest(
    funded_asset: Asset,
) -> None:
    # given distributions due a week ago (downtime), due now, in the future, and one on a paused asset
    overdue = make_distribution(asset=funded_asset)
    Distribution.objects.filter(pk=overdue.pk).update(scheduled_at=timezone.now() - timedelta(days=7))
    due = make_distribution(asset=funded_asset)
    Distribution.objects.filter(pk=due.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    future = make_distribution(asset=funded_asset)
    broken = make_distribution(
        asset=funded_asset, subtype=Distribution.Subtype.RECURRING, recurrence="DAILY", series_id=uuid.uuid4()
    )
    Distribution.objects.filter(pk=broken.pk).update(scheduled_at=timezone.now() - timedelta(days=8))  # no anchor
    paused = make_distribution(asset__is_paused=True)
    Distribution.objects.filter(pk=paused.pk).update(scheduled_at=timezone.now() - timedelta(hours=1))
    # when
    result = services.run_scheduled_distributions()
    # then
    statuses = dict(Distribution.objects.values_list("id", "status"))
    assert statuses[overdue.pk] == statuses[due.pk] == "IN_PROGRESS"
    assert statuses[future.pk] == statuses[paused.pk] == "SCHEDULED"
    assert statuses[broken.pk] == "SCHEDULED"  # its failure rolled back, and did not stop the others
    assert result == {"done": 2, "skipped": 0, "failed": 1}
