"""Redis locks: one running instance of a periodic job, and per-key lanes.

Redis is the lock service, never the only copy of data: losing a lock can at worst let two runs
overlap, which every guarded job tolerates because its writes are conditional in PostgreSQL.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

SKIPPED = "skipped: already running"


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)


def redis_client() -> redis.Redis:
    """A shared client for REDIS_URL (one connection pool per URL and process)."""
    return _client(settings.REDIS_URL)


def lock_key(name: str) -> str:
    return f"lock:{name}"


@contextmanager
def redis_lock(name: str, *, timeout: int, blocking_timeout: float | None = 0) -> Iterator[bool]:
    """Hold the lock `name` for at most `timeout` seconds; yields whether it was acquired.

    `blocking_timeout=0` gives up at once; `None` waits forever.
    """
    lock = redis_client().lock(lock_key(name), timeout=timeout, blocking_timeout=blocking_timeout)
    acquired = lock.acquire(blocking=blocking_timeout != 0)
    try:
        yield bool(acquired)
    finally:
        if acquired:
            try:
                lock.release()
            except redis.exceptions.LockError:
                logger.warning("lock expired before release name=%s", name)


def single_instance(
    name: str | None = None, *, timeout: int | None = None
) -> Callable[[Callable[P, R]], Callable[P, R | str]]:
    """Decorate a periodic task body so that two runs never overlap.

    A run that finds the lock held returns `SKIPPED` without doing anything.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R | str]:
        key = name or f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | str:
            with redis_lock(key, timeout=timeout or settings.PERIODIC_TASK_LOCK_TIMEOUT) as acquired:
                if not acquired:
                    logger.info("periodic task skipped, lock held name=%s", key)
                    return SKIPPED
                return func(*args, **kwargs)

        return wrapper

    return decorate
