"""Recurring series in a time zone: 09:00 Madrid stays 09:00 Madrid across daylight-saving changes.

Occurrence n is computed on the wall clock of the series' IANA zone from its original anchor and
stored as the UTC instant. Wall-clock times the spring change skips run at the first instant at or
after them (the moment the clocks jump); times the autumn change repeats run at the earlier of the two.
"""

from __future__ import annotations

import calendar
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from config.errors import InvalidInput
from payouts import services
from payouts.models import Asset, Distribution
from payouts.recurrence import known_time_zone, latest_due_occurrence, local_instant, occurrence_time
from tests.payouts.factories import make_asset

MADRID = ZoneInfo("Europe/Madrid")


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _wall(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A wall-clock reading: a date and time of day, in no zone (naive on purpose)."""
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("anchor", "recurrence", "n", "expected"),
    [
        # DAILY 09:00 Madrid from Fri 27 Mar 2026: CET (UTC+1) until Sun 29 Mar 02:00, CEST (UTC+2) after
        (_utc(2026, 3, 27, 8), "DAILY", 1, _utc(2026, 3, 28, 8)),
        (_utc(2026, 3, 27, 8), "DAILY", 2, _utc(2026, 3, 29, 7)),
        (_utc(2026, 3, 27, 8), "DAILY", 3, _utc(2026, 3, 30, 7)),
        # ... and back on Sun 25 Oct 2026
        (_utc(2026, 10, 23, 7), "DAILY", 2, _utc(2026, 10, 25, 8)),
        (_utc(2026, 10, 18, 7), "WEEKLY", 1, _utc(2026, 10, 25, 8)),
        # MONTHLY from Jan 31 09:00 Madrid: month ends still clamp, 09:00 stays 09:00
        (_utc(2026, 1, 31, 8), "MONTHLY", 1, _utc(2026, 2, 28, 8)),
        (_utc(2026, 1, 31, 8), "MONTHLY", 2, _utc(2026, 3, 31, 7)),
        (_utc(2026, 1, 31, 8), "MONTHLY", 3, _utc(2026, 4, 30, 7)),
        (_utc(2026, 1, 31, 8), "MONTHLY", 10, _utc(2026, 11, 30, 8)),
        (_utc(2027, 12, 31, 8), "MONTHLY", 2, _utc(2028, 2, 29, 8)),
    ],
)
def test_occurrences_keep_the_wall_clock_time_of_the_series_time_zone(
    anchor: datetime, recurrence: str, n: int, expected: datetime
) -> None:
    # when
    moment = occurrence_time(anchor=anchor, recurrence=recurrence, occurrence=n, time_zone="Europe/Madrid")
    # then it is the expected UTC instant, and 09:00 on a Madrid wall clock
    assert moment == expected
    assert (moment.astimezone(MADRID).hour, moment.astimezone(MADRID).minute) == (9, 0)


def test_a_wall_clock_time_the_spring_change_skips_runs_when_the_clocks_jump() -> None:
    # given a DAILY 02:30 Madrid series; on Sun 29 Mar 2026 Madrid goes from 02:00 straight to 03:00
    anchor = datetime(2026, 3, 27, 2, 30, tzinfo=MADRID)
    # when
    times = [
        occurrence_time(anchor=anchor, recurrence="DAILY", occurrence=n, time_zone="Europe/Madrid") for n in (1, 2, 3)
    ]
    # then the skipped 02:30 runs at the first instant at or after it: 03:00 CEST (01:00 UTC), then 02:30 again
    assert times == [_utc(2026, 3, 28, 1, 30), _utc(2026, 3, 29, 1), _utc(2026, 3, 30, 0, 30)]
    assert local_instant(_wall(2026, 3, 29, 2, 30), MADRID) == _utc(2026, 3, 29, 1)
    assert local_instant(_wall(2026, 3, 29, 2, 59, 59, 999999), MADRID) == _utc(2026, 3, 29, 1)


def test_a_wall_clock_time_the_autumn_change_repeats_runs_at_the_earlier_of_the_two() -> None:
    # given a DAILY 02:30 Madrid series; on Sun 25 Oct 2026 Madrid lives 02:00-03:00 twice (CEST, then CET)
    anchor = datetime(2026, 10, 23, 2, 30, tzinfo=MADRID)
    # when
    times = [
        occurrence_time(anchor=anchor, recurrence="DAILY", occurrence=n, time_zone="Europe/Madrid") for n in (1, 2, 3)
    ]
    # then the repeated 02:30 runs once, at the first of the two (02:30 CEST = 00:30 UTC)
    assert times == [_utc(2026, 10, 24, 0, 30), _utc(2026, 10, 25, 0, 30), _utc(2026, 10, 26, 1, 30)]
    assert local_instant(_wall(2026, 10, 25, 2, 30), MADRID) == _utc(2026, 10, 25, 0, 30)


def test_an_anchor_on_the_second_of_two_repeated_times_is_kept_as_given() -> None:
    # given a series whose first occurrence the client set at 02:30 CET, the second 02:30 of 25 Oct 2026
    anchor = _utc(2026, 10, 25, 1, 30)
    # when / then occurrence 0 is exactly that instant; the next days run at 02:30 CET
    assert occurrence_time(anchor=anchor, recurrence="DAILY", occurrence=0, time_zone="Europe/Madrid") == anchor
    assert occurrence_time(anchor=anchor, recurrence="DAILY", occurrence=1, time_zone="Europe/Madrid") == _utc(
        2026, 10, 26, 1, 30
    )


def test_hourly_series_count_elapsed_hours_in_any_time_zone() -> None:
    # given an HOURLY series started before the spring change in Madrid
    anchor = _utc(2026, 3, 29, 0)
    # when
    times = [
        occurrence_time(anchor=anchor, recurrence="HOURLY", occurrence=n, time_zone="Europe/Madrid") for n in range(4)
    ]
    # then one hour apart each: no hour is skipped and none runs twice when the clocks move
    assert times == [anchor + timedelta(hours=n) for n in range(4)]


@pytest.mark.parametrize(
    ("zone", "anchor"),
    [
        ("Europe/Madrid", _wall(2026, 1, 31, 2, 30)),  # month end, in the spring gap and the autumn overlap
        ("America/New_York", _wall(2026, 3, 1, 2, 15)),
        ("Australia/Lord_Howe", _wall(2026, 3, 31, 2, 15)),  # 30-minute changes, southern hemisphere
        ("Pacific/Apia", _wall(2011, 12, 25, 9)),  # Samoa skipped all of 30 Dec 2011
    ],
)
@pytest.mark.parametrize("recurrence", ["DAILY", "WEEKLY", "MONTHLY"])
def test_latest_due_occurrence_agrees_with_occurrence_time_across_changes(
    zone: str, anchor: datetime, recurrence: str
) -> None:
    # given an anchor on a wall clock, and every 5 hours of a year after it
    start = local_instant(anchor, ZoneInfo(zone))
    previous = start
    for hours in range(0, 24 * 370, 5):
        now = start + timedelta(hours=hours)
        # when
        latest = latest_due_occurrence(anchor=start, recurrence=recurrence, now=now, time_zone=zone)
        # then it is due, the one after it is not, and occurrences never go back in time
        due = occurrence_time(anchor=start, recurrence=recurrence, occurrence=latest, time_zone=zone)
        assert due <= now < occurrence_time(anchor=start, recurrence=recurrence, occurrence=latest + 1, time_zone=zone)
        assert due >= previous
        previous = due


def test_only_iana_zone_names_are_known() -> None:
    assert known_time_zone("Europe/Madrid")
    assert known_time_zone("UTC")
    for name in ("Mars/Olympus", "", "europe/madrid ", "../../etc/passwd", "/etc/localtime", "localtime", "+02:00"):
        assert not known_time_zone(name), name


def test_the_zone_database_comes_with_the_project_not_only_with_the_system() -> None:
    # given a Python that finds no zone files on the system (a slim Debian image has no tzdata package)
    code = (
        "import zoneinfo; from datetime import UTC, datetime; assert zoneinfo.TZPATH == ();"
        "from payouts.recurrence import known_time_zone, occurrence_time;"
        "assert known_time_zone('Europe/Madrid');"
        "at = occurrence_time(anchor=datetime(2026, 3, 27, 8, tzinfo=UTC), recurrence='DAILY', occurrence=3,"
        " time_zone='Europe/Madrid');"
        "assert at == datetime(2026, 3, 30, 7, tzinfo=UTC), at"
    )
    # when
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONTZPATH": ""}, capture_output=True, text=True, timeout=60
    )
    # then the `tzdata` package the project depends on answers
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_a_daily_0900_madrid_series_stays_at_0900_madrid_across_the_march_change(funded_asset: Asset) -> None:
    # given a DAILY series at 09:00 Madrid, two days before next year's last Sunday of March
    change = _last_sunday(timezone.now().year + 1, 3)
    first = services.distribution_create(
        asset_id=funded_asset.pk,
        subtype="RECURRING",
        recurrence="DAILY",
        amount_type="FIXED",
        amount=1_000,
        scheduled_at=datetime.combine(change - timedelta(days=2), datetime.min.time(), MADRID).replace(hour=9),
        time_zone="Europe/Madrid",
    )
    # when four occurrences start one after the other (each start schedules the next)
    current = first
    for _ in range(4):
        services.distribution_start(distribution_id=current.pk)
        current = Distribution.objects.get(series_id=first.series_id, occurrence=current.occurrence + 1)
    # then each one is at 09:00 Madrid: 08:00 UTC before the change, 07:00 UTC from the change on
    series = Distribution.objects.filter(series_id=first.series_id).order_by("occurrence")
    expected = [
        datetime.combine(change + timedelta(days=offset), datetime.min.time(), UTC).replace(hour=hour)
        for offset, hour in ((-2, 8), (-1, 8), (0, 7), (1, 7), (2, 7))
    ]
    assert [d.scheduled_at for d in series] == expected
    assert {d.time_zone for d in series} == {"Europe/Madrid"}


@pytest.mark.django_db
def test_catch_up_counts_missed_occurrences_on_the_series_wall_clock(funded_asset: Asset) -> None:
    # given a DAILY 09:00 Madrid series (policy none) anchored on Fri 27 Mar 2026, nothing ran since
    first = services.distribution_create(
        asset_id=funded_asset.pk,
        subtype="RECURRING",
        recurrence="DAILY",
        amount_type="FIXED",
        amount=1_000,
        scheduled_at=timezone.now() + timedelta(days=1),
        catch_up="none",
        time_zone="Europe/Madrid",
    )
    anchor = _utc(2026, 3, 27, 8)
    Distribution.objects.filter(pk=first.pk).update(scheduled_at=anchor, recurrence_anchor=anchor)
    # when the scheduler looks on Mon 30 Mar at 09:30 Madrid (07:30 UTC, summer time)
    services.run_scheduled_distributions(now=_utc(2026, 3, 30, 7, 30))
    # then Monday's 09:00 Madrid (07:00 UTC) counted as due; the series goes on Tuesday at 09:00 Madrid
    rows = Distribution.objects.filter(series_id=first.series_id).order_by("occurrence")
    assert [(d.occurrence, d.status) for d in rows] == [
        (0, "SKIPPED"),
        (1, "SKIPPED"),
        (2, "SKIPPED"),
        (3, "SKIPPED"),
        (4, "SCHEDULED"),
    ]
    assert rows[4].scheduled_at == _utc(2026, 3, 31, 7)


@pytest.mark.django_db
def test_the_api_takes_a_time_zone_for_a_recurring_series_and_shows_it(api_client: APIClient) -> None:
    # given
    asset = make_asset()
    url = f"/api/v1/assets/{asset.pk}/distributions"
    body = {"subtype": "RECURRING", "recurrence": "DAILY", "amount_type": "FIXED", "amount": "10"}
    year = timezone.now().year + 1
    # when a series is created at a wall-clock time in Madrid, another at an explicit instant, one in UTC
    local = api_client.post(
        url, {**body, "scheduled_at": f"{year}-01-15T09:00:00", "time_zone": "Europe/Madrid"}, format="json"
    )
    explicit = api_client.post(
        url, {**body, "scheduled_at": f"{year}-01-15T09:00:00Z", "time_zone": "Europe/Madrid"}, format="json"
    )
    default = api_client.post(url, {**body, "scheduled_at": f"{year}-01-15T09:00:00"}, format="json")
    # then a time without an offset is read in the series' zone; the zone is shown
    assert local.status_code == explicit.status_code == default.status_code == 201, local.json()
    assert datetime.fromisoformat(local.json()["scheduled_at"]) == datetime(year, 1, 15, 8, tzinfo=UTC)
    assert datetime.fromisoformat(explicit.json()["scheduled_at"]) == datetime(year, 1, 15, 9, tzinfo=UTC)
    assert datetime.fromisoformat(default.json()["scheduled_at"]) == datetime(year, 1, 15, 9, tzinfo=UTC)
    assert (local.json()["time_zone"], default.json()["time_zone"]) == ("Europe/Madrid", "UTC")
    stored = Distribution.objects.get(pk=local.json()["id"])
    assert (stored.time_zone, stored.recurrence_anchor) == ("Europe/Madrid", datetime(year, 1, 15, 8, tzinfo=UTC))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
        ({"time_zone": "../../etc/passwd"}, "unknown time zone"),
        ({"time_zone": ""}, "unknown time zone"),
        ({"time_zone": 2}, "unknown time zone"),
        ({"time_zone": "Europe/Madrid", "subtype": "ONE_OFF", "recurrence": None}, "only RECURRING"),
    ],
)
def test_an_unknown_or_misplaced_time_zone_is_a_400_naming_the_field(
    api_client: APIClient, extra: dict[str, object], detail: str
) -> None:
    # given
    asset = make_asset()
    body: dict[str, object] = {
        "subtype": "RECURRING",
        "recurrence": "DAILY",
        "amount_type": "FIXED",
        "amount": "10",
        "scheduled_at": (timezone.now() + timedelta(days=1)).isoformat(),
        **extra,
    }
    body = {k: v for k, v in body.items() if v is not None}
    # when
    response = api_client.post(f"/api/v1/assets/{asset.pk}/distributions", body, format="json")
    # then
    assert response.status_code == 400, response.json()
    assert detail in " ".join(response.json()["fields"]["time_zone"])
    assert Distribution.objects.count() == 0


@pytest.mark.django_db
def test_the_service_refuses_an_unknown_time_zone() -> None:
    asset = make_asset()
    with pytest.raises(InvalidInput, match="unknown time zone") as refused:
        services.distribution_create(
            asset_id=asset.pk,
            subtype="RECURRING",
            recurrence="DAILY",
            amount_type="FIXED",
            amount=10,
            scheduled_at=timezone.now() + timedelta(days=1),
            time_zone="Mars/Olympus",
        )
    assert refused.value.field == "time_zone"
    assert Distribution.objects.count() == 0


@pytest.mark.django_db
def test_every_next_occurrence_carries_the_series_time_zone(funded_asset: Asset) -> None:
    # given a WEEKLY New York series
    first = services.distribution_create(
        asset_id=funded_asset.pk,
        subtype="RECURRING",
        recurrence="WEEKLY",
        amount_type="FIXED",
        amount=1_000,
        scheduled_at=timezone.now() + timedelta(hours=1),
        time_zone="America/New_York",
    )
    # when it starts
    services.distribution_start(distribution_id=first.pk)
    # then the next occurrence has the same zone, a week later on the New York wall clock
    following = Distribution.objects.get(series_id=first.series_id, occurrence=1)
    assert following.time_zone == "America/New_York"
    new_york = ZoneInfo("America/New_York")
    assert following.scheduled_at is not None
    assert first.scheduled_at is not None
    assert following.scheduled_at.astimezone(new_york).time() == first.scheduled_at.astimezone(new_york).time()
