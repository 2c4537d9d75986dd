"""The beat scheduler: django-celery-beat's database scheduler, with one leader at a time.

Two beat processes started by mistake would send every periodic task twice. The leader holds a
Redis lock that it renews on every tick; a second beat stays on standby, sending nothing, and
takes over only if the leader stops renewing (crash, network partition).
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import redis
from django_celery_beat.schedulers import DatabaseScheduler

from config.locks import lock_key, redis_client

logger = logging.getLogger(__name__)

LEADER_LOCK = "beat-leader"
LEADER_TTL_SECONDS = 60
STANDBY_SLEEP_SECONDS = 5.0


class SingleBeatDatabaseScheduler(DatabaseScheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._leader_lock = redis_client().lock(lock_key(LEADER_LOCK), timeout=LEADER_TTL_SECONDS)
        self._is_leader = False
        super().__init__(*args, **kwargs)

    def hold_leadership(self) -> bool:
        """Take the leader lock, or renew it if held; True while this scheduler leads."""
        try:
            if self._is_leader:
                self._leader_lock.reacquire()
            else:
                self._is_leader = bool(self._leader_lock.acquire(blocking=False))
                if self._is_leader:
                    logger.info("beat is leader host=%s", socket.gethostname())
        except redis.exceptions.LockError:
            logger.warning("beat lost leadership host=%s", socket.gethostname())
            self._is_leader = False
        except redis.exceptions.RedisError as exc:
            logger.warning("beat cannot reach redis error=%s", type(exc).__name__)
            self._is_leader = False
        return self._is_leader

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.hold_leadership():
            return STANDBY_SLEEP_SECONDS
        return float(super().tick(*args, **kwargs))

    def close(self) -> None:
        if self._is_leader:
            try:
                self._leader_lock.release()
            except redis.exceptions.RedisError:
                logger.warning("beat could not release leadership")
        super().close()
