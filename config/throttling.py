"""Rate limits, counted in Redis (Django's cache) so that every web process shares them.

One limiter serves the API and the inbound webhook: a fixed window per (scope, who), counted with
Redis' atomic INCR (`cache.add` then `cache.incr`), so concurrent requests in many processes are
never under-counted. Rates are "N/period" strings (`s`, `min`, `h`, `day`), read from settings at
each request; an empty rate means no limit. Over the limit the request is answered 429 with
`Retry-After` (seconds until the window ends) and the common error body.

If Redis cannot be reached the request passes (logged): the limits protect capacity, and must not
take the API down with Redis (work keeps being accepted while the broker is down, see README).
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.checks import CheckMessage, Error, register
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_IDENT_LENGTH = 100


@dataclass(frozen=True)
class Rate:
    limit: int
    period_seconds: int


def parse_rate(value: str) -> Rate | None:
    """`"600/min"` -> Rate(600, 60); `"10/5s"` -> Rate(10, 5); empty -> None (no limit)."""
    if not value.strip():
        return None
    match = _RATE.match(value)
    if match is None:
        raise ValueError(f"rate {value!r} is not like '600/min' (periods: s, min, h, day)")
    count, multiplier, unit = match.groups()
    period = int(multiplier or 1) * _SECONDS[unit[0]]
    if period < 1:
        raise ValueError(f"rate {value!r} has an empty period")
    return Rate(int(count), period)


def take(scope: str, ident: str, rate_setting: str, *, now: float | None = None) -> int | None:
    """Count one request of `ident` in `scope` against `rate_setting`.

    None when it is allowed, else the seconds the caller should wait (`Retry-After`).
    """
    rate = parse_rate(rate_setting)
    if rate is None:
        return None
    now = time.time() if now is None else now
    window = int(now // rate.period_seconds)
    key = f"throttle:{scope}:{ident[:_MAX_IDENT_LENGTH]}:{window}"
    try:
        # The key outlives its window by a margin, so it never expires while still being counted.
        cache.add(key, 0, timeout=rate.period_seconds + 5)
        count = cache.incr(key)
    except (RedisError, ValueError) as exc:
        logger.warning(
            "rate limit not checked: the cache is unavailable scope=%s error_type=%s", scope, type(exc).__name__
        )
        return None
    if count <= rate.limit:
        return None
    return max(1, math.ceil((window + 1) * rate.period_seconds - now))


def client_address(request: HttpRequest | Request) -> str:
    """The client's address: REMOTE_ADDR, or the X-Forwarded-For entry TRUSTED_PROXY_COUNT proxies from the end."""
    return str(BaseThrottle().get_ident(request) or "unknown")  # type: ignore[arg-type]


def throttled_detail(wait: int) -> str:
    """The same words as the API's 429 (DRF's `Throttled`)."""
    return str(exceptions.Throttled(wait).detail)


RATE_SETTINGS = ("THROTTLE_API_RATE", "THROTTLE_INBOUND_ADDRESS_RATE", "THROTTLE_INBOUND_APPLICATION_RATE")


@register()
def check_rates(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A malformed rate stops the start (`manage.py check`), rather than failing each request."""
    errors: list[CheckMessage] = []
    for name in RATE_SETTINGS:
        try:
            parse_rate(getattr(settings, name))
        except ValueError as exc:
            errors.append(Error(f"{name}: {exc}", id="config.E001"))
    return errors


class ApiUserRateThrottle(BaseThrottle):
    """The API's limit per user (each user has one token): THROTTLE_API_RATE."""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return True  # refused by the permission check before it counts
        self._wait = take("api-user", str(user.pk), settings.THROTTLE_API_RATE)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait
