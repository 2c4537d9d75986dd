"""Celery tasks of the chain app (thin wrappers over services)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from config.locks import SKIPPED, redis_lock, single_instance

logger = logging.getLogger(__name__)


# --- Event listener (queue `events` by name: chain.tasks.poll_*) -------------------------------------
@shared_task(ignore_result=False)
@single_instance("chain.poll_listeners")
def poll_listeners_task() -> int:
    """Periodic fan-out: one `poll_listener_task` per enabled listener."""
    from chain.models import EventListener

    listener_ids = list(EventListener.objects.filter(enabled=True).values_list("pk", flat=True))
    for listener_id in listener_ids:
        poll_listener_task.delay(listener_id)
    return len(listener_ids)


@shared_task(ignore_result=False)
def poll_listener_task(listener_id: int) -> str:
    """Poll one listener under its Redis lock (one poller per stream); go on at once if it stopped early.

    The lock is an optimisation: correctness does not depend on it, since each page commits only if
    the cursor is still where the page started.
    """
    from chain.listener import listener_poll

    with redis_lock(f"chain.listener:{listener_id}", timeout=settings.CELERY_TASK_TIME_LIMIT) as acquired:
        if not acquired:
            logger.info("listener poll skipped, lock held listener_id=%s", listener_id)
            return SKIPPED
        result = listener_poll(listener_id=listener_id)
    if result.more:
        poll_listener_task.delay(listener_id)
    return result.summary()
