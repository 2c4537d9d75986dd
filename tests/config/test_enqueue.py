"""`config.enqueue`: a publish to a dead broker costs milliseconds and returns False; once the broker
is back, the next publish goes through; a publish on commit waits for the commit."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import transaction

from config import tasks
from config.celery_app import app as celery_app
from config.enqueue import publish, publish_on_commit
from config.localservices import start_redis
from tests.fixtures.broker import DedicatedRedis, point_celery_at

HEARTBEAT = "config.tasks.record_heartbeat_task"


def _queued(queue: str = "default") -> int:
    with celery_app.connection_for_write() as connection:
        channel: Any = connection.default_channel  # a kombu Redis channel
        return int(channel.client.llen(queue))


def test_a_publish_to_a_stopped_broker_returns_false_at_once_and_the_next_one_after_it_is_back_goes_through(
    dedicated_redis: DedicatedRedis,
) -> None:
    # given a broker that took one message, then stopped
    assert publish(tasks.record_heartbeat_task)
    dedicated_redis.stop()
    # when tasks are published while it is down
    started = time.monotonic()
    outcomes = [publish(tasks.record_heartbeat_task), publish(HEARTBEAT, countdown=5)]
    took = time.monotonic() - started
    # then each publish gave up at once, without raising
    assert outcomes == [False, False]
    assert took < 2
    # when the broker is back (empty), the next publish goes through
    dedicated_redis.start()
    assert publish(tasks.record_heartbeat_task)
    assert publish(HEARTBEAT)
    assert _queued() == 2


@pytest.mark.django_db(transaction=True)
def test_a_publish_on_commit_is_sent_after_the_commit_and_not_at_all_on_rollback(
    dedicated_redis: DedicatedRedis,
) -> None:
    # given a transaction that publishes, then rolls back
    def publish_then_fail() -> None:
        with transaction.atomic():
            publish_on_commit(tasks.record_heartbeat_task)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        publish_then_fail()
    # then nothing was sent
    assert _queued() == 0
    # when one publishes and commits
    with transaction.atomic():
        publish_on_commit(HEARTBEAT)
        # then nothing is sent before the commit
        assert _queued() == 0
    assert _queued() == 1


def test_publishing_goes_through_after_the_app_was_pointed_at_another_broker_and_back(clean_redis: None) -> None:
    # given the app published on its broker (its connection pool is open), then was pointed at
    # another broker and back, as a broker-outage test does
    original = celery_app.conf.broker_url
    assert publish(HEARTBEAT)
    other = start_redis()
    try:
        point_celery_at(other.url)
        assert publish(HEARTBEAT)
    finally:
        point_celery_at(original)
        other.stop()
    # when it publishes again on its own broker, then the message goes through
    before = _queued()
    assert publish(HEARTBEAT)
    assert _queued() == before + 1
