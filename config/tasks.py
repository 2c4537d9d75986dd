"""Project-wide periodic tasks."""

from __future__ import annotations

import time

from celery import shared_task

from config.idempotency import idempotency_keys_purge
from config.locks import redis_client, single_instance

HEARTBEAT_KEY = "beat:heartbeat"


@shared_task(ignore_result=False)
@single_instance("record_heartbeat")
def record_heartbeat_task() -> float:
    """Record when beat last got a task through the broker to a worker (for /readyz and ops)."""
    now = time.time()
    redis_client().set(HEARTBEAT_KEY, str(now), ex=3600)
    return now


@shared_task
@single_instance("config.purge_idempotency_keys")
def purge_idempotency_keys_task() -> int:
    """Delete Idempotency-Key rows older than IDEMPOTENCY_KEY_TTL_HOURS."""
    return idempotency_keys_purge()
