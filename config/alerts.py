"""Discord alerts for every app: one embed per cause at most every ALERT_RATE_LIMIT_SECONDS, never raising.

Embeds are clipped to stay within Discord's limits (6,000 characters per message in total).

The Discord webhook URL is a secret: it is never logged. Alerts that were suppressed by the rate
limit are counted in Redis and the count is reported in the next alert for the same cause.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import requests
from django.conf import settings

from config.locks import redis_client
from config.logging import redact

logger = logging.getLogger(__name__)

DISCORD_TIMEOUT_SECONDS = 5
MAX_DISCORD_WAIT_SECONDS = 5.0  # longest `retry_after` we wait for once before giving up
_RED = 0xE74C3C


@dataclass(frozen=True)
class AlertField:
    name: str
    value: str


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _claim_alert_slot(cause: str) -> tuple[bool, int]:
    """(may send now, alerts suppressed since the last one sent). Redis down: send anyway."""
    client = redis_client()
    key = f"alert:sent:{cause}"
    try:
        if client.set(key, "1", nx=True, ex=max(1, settings.ALERT_RATE_LIMIT_SECONDS)):
            suppressed = client.getdel(f"alert:suppressed:{cause}")
            return True, int(suppressed or 0)
        client.incr(f"alert:suppressed:{cause}")
        client.expire(f"alert:suppressed:{cause}", 7 * 24 * 3600)
    except Exception:  # noqa: BLE001 - an alert must go out even without Redis
        logger.warning("alert rate limit unavailable, sending cause=%s", cause)
        return True, 0
    return False, 0


def _post(url: str, body: dict[str, object]) -> requests.Response:
    return requests.post(url, json=body, timeout=DISCORD_TIMEOUT_SECONDS, allow_redirects=False)


def send_alert(*, cause: str, title: str, description: str, fields: list[AlertField]) -> bool:
    """Send one Discord alert for `cause` unless one was sent recently; True if it was delivered.

    Never raises: alerting must not fail the task that raises the alert.
    """
    try:
        logger.error("alert cause=%s title=%s %s", cause, title, " ".join(f"{f.name}={f.value}" for f in fields))
        url = settings.DISCORD_WEBHOOK_URL
        if not url:
            return False
        allowed, suppressed = _claim_alert_slot(cause)
        if not allowed:
            logger.info("alert rate-limited cause=%s", cause)
            return False
        embed_fields = [
            {"name": _clip(f.name, 256), "value": _clip(redact(f.value) or "-", 900), "inline": False}
            for f in fields[:5]
        ]
        if suppressed:
            embed_fields.append({"name": "Suppressed", "value": f"{suppressed} similar alerts", "inline": False})
        body: dict[str, object] = {
            "content": None,
            "allowed_mentions": {"parse": []},
            "embeds": [
                {
                    "title": _clip(title, 256),
                    "description": _clip(redact(description), 1000),
                    "color": _RED,
                    "fields": embed_fields,
                }
            ],
        }
        response = _post(url, body)
        if response.status_code == 429:
            retry_after = _retry_after_seconds(response)
            if retry_after is not None and retry_after <= MAX_DISCORD_WAIT_SECONDS:
                time.sleep(retry_after)
                response = _post(url, body)
        if 200 <= response.status_code < 300:
            return True
        logger.warning("alert not accepted by discord cause=%s status=%s", cause, response.status_code)
    except Exception as exc:  # noqa: BLE001 - see docstring
        logger.warning("alert failed cause=%s error=%s", cause, type(exc).__name__)
    return False


def _retry_after_seconds(response: requests.Response) -> float | None:
    try:
        value = response.json().get("retry_after")
    except ValueError:
        value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None
