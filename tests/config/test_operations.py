"""Operator tooling: the operator command, log redaction, settings guards, the beat leader lock."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from rest_framework.test import APIClient

from config.beat import SingleBeatDatabaseScheduler
from config.celery_app import app
from config.locks import redis_client
from config.logging import JsonFormatter, RedactSecretsFilter, redact


@pytest.mark.django_db
def test_create_operator_prints_a_token_that_authenticates() -> None:
    # when
    out = StringIO()
    call_command("create_operator", "alice", "--password", "a-long-password-1", stdout=out)
    # then
    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {lines['api token']}")
    assert client.get("/api/v1/").json()["user"] == "alice"
    assert client.login(username="alice", password="a-long-password-1")


@pytest.mark.django_db
def test_create_operator_keeps_the_password_when_asked() -> None:
    # given
    call_command("create_operator", "bob", "--password", "first-password-1", stdout=StringIO())
    # when
    out = StringIO()
    call_command("create_operator", "bob", "--keep-password", stdout=out)
    # then
    assert "password" not in out.getvalue()
    assert APIClient().login(username="bob", password="first-password-1")


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("calling redis://:s3cr3t-pass@host:6379/0", "s3cr3t-pass"),
        ("headers Authorization=Bearer-abc123", "Bearer-abc123"),
        ("Authorization: Token 8546e885e1294701d99", "8546e885e1294701d99"),
        ("authorization='Bearer eyJhbGciOi'", "eyJhbGciOi"),
        ("private_key: 0xabcdef0123", "0xabcdef0123"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----", "MIIEv"),
        ("webhook-signature='v1,Zm9vYmFy'", "v1,Zm9vYmFy"),
    ],
)
def test_secrets_are_redacted_from_log_lines(message: str, secret: str) -> None:
    # given
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (message,), None)
    # when
    RedactSecretsFilter().filter(record)
    line = JsonFormatter().format(record)
    # then
    assert secret not in line
    assert "[REDACTED]" in line


def test_redaction_keeps_ordinary_ids_and_addresses() -> None:
    text = "batch=7 tx_hash=0x" + "ab" * 32 + " token=0x3Aa5ebB10DC797CAC828524e59A333d0A371443c"
    assert redact(text) == text


def test_a_secret_that_merely_starts_like_an_address_is_still_redacted() -> None:
    key = "0x" + "ab" * 32
    assert key not in redact(f"private_key={key}")
    assert "0x3Aa5ebB10DC797CAC828524e59A333d0A371443cff" not in redact(
        "token=0x3Aa5ebB10DC797CAC828524e59A333d0A371443cff"
    )


def test_secret_key_is_required_when_debug_is_off() -> None:
    # given an environment without SECRET_KEY and with DEBUG off
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    # when
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        check=False,
    )
    # then
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


@pytest.mark.django_db(transaction=True)  # the scheduler commits and closes connections itself
@pytest.mark.usefixtures("clean_redis")
def test_only_one_beat_sends_tasks() -> None:
    # given two beat schedulers started by mistake
    first = SingleBeatDatabaseScheduler(app=app, lazy=True)
    second = SingleBeatDatabaseScheduler(app=app, lazy=True)
    # when both try to lead
    # then only the first does; the second takes over once the first stops
    assert first.hold_leadership() is True
    assert second.hold_leadership() is False
    assert first.hold_leadership() is True
    first.close()
    assert second.hold_leadership() is True
    second.close()


@pytest.mark.django_db(transaction=True)  # the scheduler commits and closes connections itself
@pytest.mark.usefixtures("clean_redis")
def test_a_standby_that_takes_over_does_not_send_again_what_the_leader_sent() -> None:
    # given an hourly task last sent two hours ago, and two beats started by mistake
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(
        name="hourly-heartbeat",
        task="config.tasks.record_heartbeat_task",
        interval=every_hour,
        last_run_at=timezone.now() - timedelta(hours=2),
    )
    first = SingleBeatDatabaseScheduler(app=app)
    second = SingleBeatDatabaseScheduler(app=app)
    # when the leader sends it and stops, and the standby takes over
    assert first.hold_leadership() is True
    first.tick()
    first.close()
    assert second.hold_leadership() is True
    second.tick()
    second.close()
    # then it was sent once: the new leader read the last run the old one saved
    assert redis_client().llen("default") == 1


@pytest.mark.django_db(transaction=True)  # the scheduler commits and closes connections itself
@pytest.mark.usefixtures("clean_redis")
def test_a_leader_stopped_by_sigterm_hands_over_without_a_false_warning(caplog: pytest.LogCaptureFixture) -> None:
    # given a leading beat
    leader = SingleBeatDatabaseScheduler(app=app, lazy=True)
    assert leader.hold_leadership() is True
    # when celery beat stops on SIGTERM: its signal handler closes the scheduler, then its loop again
    with caplog.at_level(logging.INFO, logger="config.beat"):
        leader.close()
        leader.close()
    # then leadership was released once, quietly, and another beat can lead at once
    assert "could not release leadership" not in caplog.text
    standby = SingleBeatDatabaseScheduler(app=app, lazy=True)
    assert standby.hold_leadership() is True
    standby.close()


@pytest.mark.django_db(transaction=True)  # the scheduler commits and closes connections itself
@pytest.mark.usefixtures("clean_redis")
def test_a_beat_that_cannot_read_its_schedule_when_taking_over_stays_on_standby(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a beat that finds the leader lock free while the database cannot be read
    standby = SingleBeatDatabaseScheduler(app=app, lazy=True)

    def database_down() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(standby, "all_as_schedule", database_down)
    # when it tries to lead, then it does not (it would lead with old last run times) and frees the lock
    assert standby.hold_leadership() is False
    other = SingleBeatDatabaseScheduler(app=app, lazy=True)
    assert other.hold_leadership() is True
    other.close()
