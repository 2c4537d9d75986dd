"""When the n-th occurrence of a recurring distribution is due (pure).

Occurrence n is computed from the series' ORIGINAL anchor, never from the previous occurrence:
HOURLY/DAILY/WEEKLY add n hours/days/weeks; MONTHLY adds n calendar months and clamps the day to
the month's length. So an anchor of Jan 31 gives Feb 28 (Feb 29 in leap years), then Mar 31,
Apr 30, ...: the end of the month stays the end of the month instead of drifting to the 28th.

`latest_due_occurrence` is the inverse the catch-up policy needs: which occurrence is the latest one
due at a given moment (an occurrence before it was missed).
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

_FIXED = {
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def occurrence_time(*, anchor: datetime, recurrence: str, occurrence: int) -> datetime:
    if occurrence < 0:
        raise ValueError("occurrence must not be negative")
    if recurrence == "MONTHLY":
        return add_months(anchor, occurrence)
    try:
        return anchor + _FIXED[recurrence] * occurrence
    except KeyError:
        raise ValueError(f"unknown recurrence {recurrence!r}") from None


def latest_due_occurrence(*, anchor: datetime, recurrence: str, now: datetime) -> int:
    """The largest n with occurrence_time(n) <= now; -1 when even the first is still ahead."""
    if now < anchor:
        return -1
    if recurrence == "MONTHLY":
        estimate = (now.year - anchor.year) * 12 + now.month - anchor.month
    elif recurrence in _FIXED:
        estimate = (now - anchor) // _FIXED[recurrence]
    else:
        raise ValueError(f"unknown recurrence {recurrence!r}")
    # The estimate is off by at most one (time of day, a clamped month end): step to the exact answer.
    while estimate > 0 and occurrence_time(anchor=anchor, recurrence=recurrence, occurrence=estimate) > now:
        estimate -= 1
    while occurrence_time(anchor=anchor, recurrence=recurrence, occurrence=estimate + 1) <= now:
        estimate += 1
    return estimate
