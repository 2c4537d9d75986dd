"""Write the periodic schedules declared in code (config.celery_app) to django-celery-beat's tables.

Idempotent. An entry is created when missing, rewritten only when its declaration in code changed
(so operators' edits in the admin survive releases), and deleted when no longer declared. Entries
that operators created by hand are left alone: ours carry a fingerprint in their description.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from celery import Celery
from celery.schedules import crontab
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from config.celery_app import PeriodicSchedule

MANAGED_MARK = "[declared in code; fingerprint "


class ScheduleError(ValueError):
    """A declaration cannot be written (unknown task, bad cron expression)."""


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def parse_cron(expression: str) -> tuple[str, str, str, str, str]:
    """Five cron fields (minute hour day-of-month month day-of-week) from a 5- or 6-field expression.

    A 6-field expression has a leading seconds field, which must be 0: beat's resolution is a minute.
    """
    parts = expression.split()
    if len(parts) == 6:
        if parts[0] != "0":
            raise ScheduleError(f"cron {expression!r}: the seconds field must be 0 (beat runs per minute)")
        parts = parts[1:]
    if len(parts) != 5:
        raise ScheduleError(f"cron {expression!r}: expected 5 fields, or 6 with leading seconds")
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    try:
        crontab(minute, hour, day_of_week, day_of_month, month_of_year)
    except ValueError as exc:
        raise ScheduleError(f"cron {expression!r}: {exc}") from exc
    return minute, hour, day_of_month, month_of_year, day_of_week


def fingerprint(schedule: PeriodicSchedule) -> str:
    body = json.dumps([schedule.task, schedule.every_seconds, schedule.cron, list(schedule.kwargs)], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def _schedule_fields(schedule: PeriodicSchedule) -> dict[str, object]:
    if schedule.every_seconds is not None:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=schedule.every_seconds, period=IntervalSchedule.SECONDS
        )
        return {"interval": interval, "crontab": None}
    assert schedule.cron is not None  # noqa: S101 - guaranteed by PeriodicSchedule
    minute, hour, day_of_month, month_of_year, day_of_week = parse_cron(schedule.cron)
    cron, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    return {"interval": None, "crontab": cron}


def sync_schedules(declared: dict[str, PeriodicSchedule], app: Celery) -> SyncReport:
    app.loader.import_default_modules()
    unknown = sorted(s.task for s in declared.values() if s.task not in app.tasks)
    if unknown:
        raise ScheduleError(f"declared schedules name unregistered tasks: {', '.join(unknown)}")
    for schedule in declared.values():
        if schedule.cron is not None:
            parse_cron(schedule.cron)

    report = SyncReport()
    with transaction.atomic():
        for name, schedule in sorted(declared.items()):
            mark = f"{MANAGED_MARK}{fingerprint(schedule)}]"
            existing = PeriodicTask.objects.select_for_update().filter(name=name).first()
            if existing is not None and mark in existing.description:
                report.unchanged.append(name)
                continue
            values = {
                "task": schedule.task,
                "kwargs": json.dumps(dict(schedule.kwargs)),
                "description": f"{schedule.description} {mark}",
                **_schedule_fields(schedule),
            }
            if existing is None:
                PeriodicTask.objects.create(name=name, enabled=True, **values)
                report.created.append(name)
            else:
                for attribute, value in values.items():
                    setattr(existing, attribute, value)
                existing.save()
                report.updated.append(name)
        stale = PeriodicTask.objects.filter(description__contains=MANAGED_MARK).exclude(name__in=declared)
        report.removed = sorted(stale.values_list("name", flat=True))
        stale.delete()
    return report
