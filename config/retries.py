"""Errors worth retrying a task for: a service was down or slow (database, Redis, the broker), not
our code wrong. Apps add their own (the chain's `TransientChainError`). Anything else fails the task
at once, logged with its traceback, instead of burning retries on a bug.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerError,
)
