"""Enqueueing Celery tasks: after commit, bounded, never raising. The one way the apps publish work.

A row in PostgreSQL is the truth and each app's periodic sweeper re-enqueues work whose message the
broker never got, so a publish is best effort and must stay cheap when the broker is down:

- `publish` sends one task message or gives up at once: one connection attempt bounded by
  PUBLISH_TIMEOUT_SECONDS (plus the socket timeouts of CELERY_BROKER_TRANSPORT_OPTIONS), no kombu
  reconnect loop, no publish retries. A failure is logged and returned as False, never raised.
- `publish_on_commit` publishes once the caller's transaction commits (nothing if it rolls back), so
  a task never reads rows that are not there yet and a request never waits on a dead broker.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from celery import Task
from django.db import transaction

from config.celery_app import app as celery_app

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 2.0


def publish(task: Task[Any, Any] | str, *args: Any, countdown: float | None = None) -> bool:
    """Send `task(*args)` to the broker now; False (logged) if it could not take it.

    `task` is a task object or a registered task name (routed by `task_routes` either way). Never
    raises and never retries: the caller's rows are the truth and its sweeper sends the task again.
    """
    name = task if isinstance(task, str) else task.name
    try:
        pool: Any = celery_app.pool  # a kombu connection pool (the stubs say otherwise)
        with pool.acquire(block=True, timeout=PUBLISH_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=0, timeout=PUBLISH_TIMEOUT_SECONDS)
            if isinstance(task, str):
                celery_app.send_task(task, args=list(args), countdown=countdown, retry=False, connection=connection)
            else:  # the task's own options (its route) apply; the stubs lack `connection`
                sender: Any = task
                sender.apply_async(args=args, countdown=countdown, retry=False, connection=connection)
    except Exception as exc:  # noqa: BLE001 - whatever the broker did, the sweeper covers it
        error = type(exc).__name__
        logger.warning("task not published, its sweeper will send it task=%s args=%s error=%s", name, args, error)
        return False
    return True


def publish_on_commit(task: Task[Any, Any] | str, *args: Any, countdown: float | None = None) -> None:
    """`publish` once the current transaction commits (at once outside one); nothing on rollback."""
    transaction.on_commit(partial(publish, task, *args, countdown=countdown), robust=True)
