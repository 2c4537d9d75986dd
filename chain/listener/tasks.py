"""Listener tasks (queue `events` by name: chain.tasks.poll_*): the periodic fan-out and one poll per listener."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from chain.listener.engine import listener_poll
from chain.listener.models import EventListener
from config.enqueue import publish
from config.locks import SKIPPED, redis_lock, single_instance

logger = logging.getLogger(__name__)


@shared_task(name="chain.tasks.poll_listeners_task", ignore_result=False)
@single_instance("chain.poll_listeners")
def poll_listeners_task() -> int:
    """Periodic fan-out: one `poll_listener_task` per enabled listener."""
    listener_ids = list(EventListener.objects.filter(enabled=True).values_list("pk", flat=True))
    for listener_id in listener_ids:
        publish(poll_listener_task, listener_id)
    return len(listener_ids)


@shared_task(name="chain.tasks.poll_listener_task", ignore_result=False)
def poll_listener_task(listener_id: int) -> str:
    """Poll one listener under its Redis lock (one poller per stream); go on at once if it stopped early.

    The lock is an optimisation: correctness does not depend on it, since each page commits only if
    the cursor is still where the page started.
    """
    with redis_lock(f"chain.listener:{listener_id}", timeout=settings.CELERY_TASK_TIME_LIMIT) as acquired:
        if not acquired:
            logger.info("listener poll skipped, lock held listener_id=%s", listener_id)
            return SKIPPED
        result = listener_poll(listener_id=listener_id)
    if result.more:
        publish(poll_listener_task, listener_id)
    return result.summary()
