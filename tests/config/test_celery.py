"""A real worker runs tasks from the Redis broker; periodic tasks never overlap."""

from __future__ import annotations

import pytest
from celery.worker import WorkController

from config import tasks
from config.celery_app import app
from config.locks import SKIPPED, lock_key, redis_client, redis_lock


def test_worker_runs_a_task_sent_through_the_broker(celery_worker: WorkController) -> None:
    # given no heartbeat yet
    assert redis_client().get(tasks.HEARTBEAT_KEY) is None
    # when the task goes through Redis to the worker
    result = tasks.record_heartbeat_task.delay()
    # then the worker ran it
    recorded = result.get(timeout=15)
    assert float(redis_client().get(tasks.HEARTBEAT_KEY) or 0) == recorded


def test_periodic_task_is_skipped_while_its_lock_is_held(celery_worker: WorkController) -> None:
    # given another run holds the lock
    with redis_lock("record_heartbeat", timeout=60) as acquired:
        assert acquired
        # when beat sends the task again
        outcome = tasks.record_heartbeat_task.delay().get(timeout=15)
        # then it did nothing
        assert outcome == SKIPPED
        assert redis_client().get(tasks.HEARTBEAT_KEY) is None
    # and once the lock is free, the next run works
    assert isinstance(tasks.record_heartbeat_task.delay().get(timeout=15), float)
    assert redis_client().get(lock_key("record_heartbeat")) is None


@pytest.mark.usefixtures("clean_redis")
def test_tasks_are_routed_to_one_queue_per_concern() -> None:
    # when
    router = app.amqp.router
    # then
    assert {q.name for q in app.conf.task_queues} == {"default", "chain", "events", "webhooks"}
    assert router.route({}, "config.tasks.record_heartbeat_task")["queue"].name == "default"
    assert router.route({}, "chain.tasks.submit_transaction_task")["queue"].name == "chain"
    assert router.route({}, "chain.tasks.poll_listener_task")["queue"].name == "events"
    assert router.route({}, "agreements.tasks.deliver_webhook_task")["queue"].name == "webhooks"
