"""The beat scheduler: django-celery-beat's database scheduler, with one leader at a time.

Two beat processes started by mistake would send every periodic task twice. The leader holds a
Redis lock that it renews on every tick; a second beat stays on standby, sending nothing, and
takes over when the leader stops (it releases the lock) or stops renewing it (crash, partition).
A beat that takes over first reads the schedule again: the entries it read at its start carry the
last run times of that moment, and the leader has sent (and saved) many since.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import redis
from django.db import Error as DatabaseError
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
                self._is_leader = bool(self._leader_lock.acquire(blocking=False)) and self._read_or_step_back()
                if self._is_leader:
                    logger.info("beat is leader host=%s", socket.gethostname())
        except redis.exceptions.LockError:
            logger.warning("beat lost leadership host=%s", socket.gethostname())
            self._is_leader = False
        except redis.exceptions.RedisError as exc:
            logger.warning("beat cannot reach redis error=%s", type(exc).__name__)
            self._is_leader = False
        return self._is_leader

    def _read_or_step_back(self) -> bool:
        """Just took the lock: read the schedule again; if the database cannot be read, give the lock
        back rather than lead with last run times that may be old (the next tick tries again)."""
        try:
            self.read_schedule_again()
        except DatabaseError as exc:
            logger.warning("beat cannot read its schedule, stays on standby error=%s", type(exc).__name__)
            self._leader_lock.release()
            return False
        return True

    def read_schedule_again(self) -> None:
        """Read every entry from the database, with the last run times the previous leader saved
        (it saves them when it stops), so that nothing it sent is sent again at the hand-over."""
        self.sync()  # what this one sent while it led before, if it did
        self._schedule = self.all_as_schedule()
        self._heap = None  # celery rebuilds it from the schedule on the next tick

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.hold_leadership():
            return STANDBY_SLEEP_SECONDS
        return float(super().tick(*args, **kwargs))

    def close(self) -> None:
        """Save the last run times, then release leadership. Celery calls it twice on SIGTERM (its
        signal handler, then its main loop): the second call has nothing left to release."""
        super().close()  # saves the last run times first: the next leader reads them
        if self._is_leader:
            self._is_leader = False
            try:
                self._leader_lock.release()
            except redis.exceptions.RedisError:
                logger.warning("beat could not release leadership")
