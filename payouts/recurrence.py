"""When the n-th occurrence of a recurring distribution is due (pure).

Occurrence n is computed from the series' ORIGINAL anchor, never from the previous occurrence, on the
wall clock of the series' IANA time zone (`time_zone`, default UTC), and returned as the UTC instant:
DAILY/WEEKLY add n days/weeks to the anchor's local date and time; MONTHLY adds n calendar months and
clamps the day to the month's length. So 09:00 Europe/Madrid stays 09:00 Madrid across daylight-saving
changes (08:00 UTC in winter, 07:00 UTC in summer), and an anchor of Jan 31 gives Feb 28 (Feb 29 in leap
years), then Mar 31, Apr 30, ...: the end of the month stays the end of the month. HOURLY adds n elapsed
hours whatever the zone: no hour is skipped or run twice when the clocks move. Occurrence 0 is the
anchor itself.

Wall-clock times a change makes ambiguous follow one rule each (`local_instant`):
- a time that does not exist (the clocks jump over it, e.g. 02:30 on Madrid's last Sunday of March)
  runs at the first instant at or after it: the moment the clocks jump (03:00 local);
- a time that exists twice (the clocks go back over it, e.g. 02:30 on Madrid's last Sunday of October)
  runs once, at the earlier of the two instants.

`latest_due_occurrence` is the inverse the catch-up policy needs: which occurrence is the latest one
due at a given moment (an occurrence before it was missed).
"""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_TIME_ZONE = "UTC"

_FIXED = {
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}
# Names the zone database answers to that are not IANA zones: the host's own zone (it differs per
# machine) and tzdata's placeholder.
_NOT_IANA = frozenset({"localtime", "Factory"})


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    # The system zone database, else the `tzdata` package (a dependency: slim images have no /usr/share/zoneinfo).
    return frozenset(available_timezones()) - _NOT_IANA


def time_zone_names() -> list[str]:
    """Every zone `known_time_zone` accepts, sorted (the admin's choices)."""
    return sorted(_known_zones())


def known_time_zone(name: object) -> bool:
    """True for an IANA zone name of the zone database (`Europe/Madrid`, `UTC`), exactly as spelled."""
    return isinstance(name, str) and name in _known_zones()


def zone(name: str) -> ZoneInfo:
    if not known_time_zone(name):
        raise ValueError(f"unknown time zone {name!r}")
    return ZoneInfo(name)


def local_instant(wall: datetime, in_zone: tzinfo) -> datetime:
    """The UTC instant of wall-clock time `wall` (naive) in `in_zone`, by the rules in the module docstring."""
    earlier = wall.replace(tzinfo=in_zone, fold=0).astimezone(UTC)  # fold 0: the earlier of two
    if earlier.astimezone(in_zone).replace(tzinfo=None) == wall:
        return earlier
    # `wall` is in a gap: fold 0 read it with the offset from before the jump (an instant after it), fold 1
    # with the offset from after (an instant before it). The jump lies between: find its second.
    after = earlier.astimezone(in_zone).utcoffset()
    low = math.floor(wall.replace(tzinfo=in_zone, fold=1).timestamp())
    high = math.ceil(earlier.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, in_zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def wall_clock_text(moment: datetime, time_zone: str = DEFAULT_TIME_ZONE) -> str:
    """For people: `2027-03-29 09:00 Europe/Madrid (2027-03-29 07:00 UTC)`, or `... UTC` alone."""

    def text(at: datetime) -> str:
        return f"{at:%Y-%m-%d %H:%M}" if at.second == at.microsecond == 0 else f"{at:%Y-%m-%d %H:%M:%S}"

    utc = moment.astimezone(UTC)
    if time_zone == DEFAULT_TIME_ZONE or not known_time_zone(time_zone):
        return f"{text(utc)} UTC"
    return f"{text(moment.astimezone(ZoneInfo(time_zone)))} {time_zone} ({text(utc)} UTC)"


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def occurrence_time(
    *, anchor: datetime, recurrence: str, occurrence: int, time_zone: str = DEFAULT_TIME_ZONE
) -> datetime:
    if occurrence < 0:
        raise ValueError("occurrence must not be negative")
    if recurrence not in _FIXED and recurrence != "MONTHLY":
        raise ValueError(f"unknown recurrence {recurrence!r}")
    if recurrence == "HOURLY":
        return anchor + _FIXED[recurrence] * occurrence
    if occurrence == 0:
        return anchor  # as given, even the second of two repeated wall-clock times
    in_zone = zone(time_zone)
    wall = anchor.astimezone(in_zone).replace(tzinfo=None, fold=0)
    if recurrence == "MONTHLY":
        return local_instant(add_months(wall, occurrence), in_zone)
    return local_instant(wall + _FIXED[recurrence] * occurrence, in_zone)


def latest_due_occurrence(
    *, anchor: datetime, recurrence: str, now: datetime, time_zone: str = DEFAULT_TIME_ZONE
) -> int:
    """The largest n with occurrence_time(n) <= now; -1 when even the first is still ahead."""
    if now < anchor:
        return -1
    if recurrence == "MONTHLY":
        in_zone = zone(time_zone)
        local_now, local_anchor = now.astimezone(in_zone), anchor.astimezone(in_zone)
        estimate = (local_now.year - local_anchor.year) * 12 + local_now.month - local_anchor.month
    elif recurrence in _FIXED:
        estimate = (now - anchor) // _FIXED[recurrence]
    else:
        raise ValueError(f"unknown recurrence {recurrence!r}")

    def due(n: int) -> datetime:
        return occurrence_time(anchor=anchor, recurrence=recurrence, occurrence=n, time_zone=time_zone)

    # The estimate is off by a little (time of day, a clamped month end, a clock change): step to the exact answer.
    while estimate > 0 and due(estimate) > now:
        estimate -= 1
    while due(estimate + 1) <= now:
        estimate += 1
    return estimate
