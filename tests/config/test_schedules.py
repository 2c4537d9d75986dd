"""Schedules declared in code are synced to the beat tables, idempotently."""

from __future__ import annotations

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from config.celery_app import PeriodicSchedule, app, declared_schedules
from config.schedules import ScheduleError, parse_cron, sync_schedules

pytestmark = pytest.mark.django_db

HEARTBEAT = "config.tasks.record_heartbeat_task"


def test_every_declared_schedule_is_written_once() -> None:
    # when synced twice
    first = sync_schedules(declared_schedules(), app)
    second = sync_schedules(declared_schedules(), app)
    # then
    assert sorted(first.created) == sorted(declared_schedules())
    assert second.created == []
    assert second.updated == []
    assert second.removed == []
    assert PeriodicTask.objects.filter(name__in=declared_schedules()).count() == len(declared_schedules())


def test_operator_edits_survive_a_sync_of_an_unchanged_declaration() -> None:
    # given a synced schedule that an operator slowed down and disabled in the admin
    declared = {"heartbeat": PeriodicSchedule(task=HEARTBEAT, every_seconds=30, description="d")}
    sync_schedules(declared, app)
    task = PeriodicTask.objects.get(name="heartbeat")
    task.interval = IntervalSchedule.objects.create(every=300, period=IntervalSchedule.SECONDS)
    task.enabled = False
    task.save()
    # when synced again
    report = sync_schedules(declared, app)
    # then the edit is kept
    task.refresh_from_db()
    assert report.unchanged == ["heartbeat"]
    assert task.interval is not None
    assert task.interval.every == 300
    assert task.enabled is False


def test_a_changed_declaration_rewrites_the_schedule() -> None:
    # given
    sync_schedules({"heartbeat": PeriodicSchedule(task=HEARTBEAT, every_seconds=30, description="d")}, app)
    # when the code now says every 5 minutes by cron, with seconds
    report = sync_schedules({"heartbeat": PeriodicSchedule(task=HEARTBEAT, cron="0 */5 * * * *", description="d")}, app)
    # then
    task = PeriodicTask.objects.get(name="heartbeat")
    assert report.updated == ["heartbeat"]
    assert task.interval is None
    assert task.crontab == CrontabSchedule.objects.get(minute="*/5", hour="*")


def test_schedules_no_longer_declared_are_removed_but_hand_made_ones_stay() -> None:
    # given one synced schedule and one an operator created by hand
    sync_schedules({"old": PeriodicSchedule(task=HEARTBEAT, every_seconds=30, description="d")}, app)
    interval = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="hand-made", task=HEARTBEAT, interval=interval)
    # when the code no longer declares "old"
    report = sync_schedules({}, app)
    # then
    assert report.removed == ["old"]
    assert list(PeriodicTask.objects.values_list("name", flat=True)) == ["hand-made"]


def test_an_unregistered_task_is_refused_and_nothing_is_written() -> None:
    # when / then
    with pytest.raises(ScheduleError, match="unregistered tasks: nope.task"):
        sync_schedules(
            {
                "good": PeriodicSchedule(task=HEARTBEAT, every_seconds=30, description="d"),
                "bad": PeriodicSchedule(task="nope.task", every_seconds=30, description="d"),
            },
            app,
        )
    assert not PeriodicTask.objects.filter(name__in=["good", "bad"]).exists()


@pytest.mark.parametrize(
    ("expression", "fields"),
    [
        ("0 */5 * * * *", ("*/5", "*", "*", "*", "*")),
        ("*/10 * * * *", ("*/10", "*", "*", "*", "*")),
        ("0 0 1 * 1", ("0", "0", "1", "*", "1")),
    ],
)
def test_cron_expressions_with_and_without_seconds(expression: str, fields: tuple[str, ...]) -> None:
    assert parse_cron(expression) == fields


@pytest.mark.parametrize("expression", ["30 */5 * * * *", "* *", "99 * * * *"])
def test_bad_cron_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_cron(expression)
