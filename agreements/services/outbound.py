"""Outbound webhooks: the outbox row, one signed try, retry policy, resend and the sweeper.

A delivery is claimed by a conditional UPDATE (`status=PENDING`, due, lease free) before it is
sent, so duplicate task messages (sweeper plus original) never send the same try twice at once.
The HTTP request happens outside any transaction; the attempt row and the delivery's new state
are written together afterwards.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any
from uuid import UUID

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agreements import signing
from agreements.models import Agreement, IllegalTransitionError, WebhookDelivery, WebhookDeliveryAttempt
from agreements.payloads import encode_body
from config.alerts import AlertField, send_alert
from config.celery_app import app as celery_app
from config.logging import redact

logger = logging.getLogger(__name__)

DELIVER_TASK = "agreements.tasks.deliver_webhook_task"
RESPONSE_BODY_LIMIT = 2000
USER_AGENT = "moneyguard-backend-webhooks/1"
_CLAIM_TOLERANCE = timedelta(seconds=1)  # an ETA may fire a hair before the stored due time


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: UUID
    status: str  # a WebhookDelivery.Status, or "skipped" when the delivery was not ours to send
    retry_in: float | None = None
    final_failure: bool = False


# --- Creating and enqueueing ----------------------------------------------------------------------
def publish_now(task_name: str, task_arg: str, *, countdown: float | None = None) -> None:
    """Publish a task message or raise at once: never sit in kombu's reconnect loop.

    Callers keep the truth in a row, so a broker outage must cost milliseconds, not a retry loop.
    """
    pool: Any = celery_app.pool  # a kombu connection pool (the stubs say otherwise)
    with pool.acquire(block=True, timeout=5) as connection:
        connection.ensure_connection(max_retries=0, timeout=2)
        celery_app.send_task(task_name, args=[task_arg], countdown=countdown, retry=False, connection=connection)


def enqueue_delivery(delivery_id: UUID, *, countdown: float | None = None) -> bool:
    """Send the delivery task to the broker; False (logged) if the broker is unreachable.

    Never raises and never retries: the row is the truth and the sweeper re-enqueues it.
    """
    try:
        publish_now(DELIVER_TASK, str(delivery_id), countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - the sweeper covers any broker failure
        logger.warning(
            "delivery not enqueued, sweeper will retry delivery_id=%s error=%s", delivery_id, type(exc).__name__
        )
        return False
    return True


def webhook_delivery_create(*, agreement: Agreement, event_type: str, payload: dict[str, Any]) -> WebhookDelivery:
    """Write the outbox row inside the caller's transaction; enqueue its task after commit."""
    delivery = WebhookDelivery.objects.create(agreement=agreement, event_type=event_type, payload=payload)
    transaction.on_commit(partial(enqueue_delivery, delivery.id), robust=True)
    return delivery


# --- Retry policy ---------------------------------------------------------------------------------
def backoff_seconds(retry_number: int) -> float:
    """Exponential backoff with jitter: between half and all of base x 2^(n-1), capped."""
    ceiling = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, retry_number - 1)
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security
    return float(min(delay, settings.WEBHOOK_RETRY_MAX_SECONDS))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or timezone.now())).total_seconds())


# --- One try --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _HttpResult:
    status: int | None
    body: str
    error: str
    kind: str  # "ok", "http_<status>", "timeout", "connection"
    retry_after: float | None
    duration_ms: int


def _post(url: str, body: bytes, headers: dict[str, str]) -> _HttpResult:
    started = time.monotonic()
    try:
        with requests.post(
            url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        ) as response:
            raw = response.raw.read(RESPONSE_BODY_LIMIT, decode_content=True) or b""
            text = raw.decode("utf-8", errors="replace")
            ok = 200 <= response.status_code < 300
            retry_after = (
                parse_retry_after(response.headers.get("Retry-After")) if response.status_code in (429, 503) else None
            )
            return _HttpResult(
                status=response.status_code,
                body=text,
                error="" if ok else f"HTTP {response.status_code}",
                kind="ok" if ok else f"http_{response.status_code}",
                retry_after=retry_after,
                duration_ms=int((time.monotonic() - started) * 1000),
            )
    except requests.Timeout:
        error, kind = f"timeout after {settings.WEBHOOK_TIMEOUT_SECONDS:g}s", "timeout"
    except requests.RequestException as exc:
        error, kind = f"connection error: {type(exc).__name__}: {redact(str(exc))[:500]}", "connection"
    return _HttpResult(None, "", error, kind, None, int((time.monotonic() - started) * 1000))


def _claim(delivery_id: UUID, now: datetime) -> bool:
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    claimed = (
        WebhookDelivery.objects.filter(
            id=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now + _CLAIM_TOLERANCE
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + lease)
    )
    return claimed == 1


def webhook_delivery_send(*, delivery_id: UUID) -> DeliveryOutcome:
    """Make one signed try of a due delivery and record it; decide whether and when to retry."""
    if not _claim(delivery_id, timezone.now()):
        return DeliveryOutcome(delivery_id, "skipped")
    delivery = WebhookDelivery.objects.get(id=delivery_id)
    url = settings.BLOCKCHAIN_WEBHOOK_URL
    body = encode_body(delivery.payload)
    attempted_at = timezone.now()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    try:
        if not url or not settings.BLOCKCHAIN_APPLICATION_ID:
            raise ValueError("BLOCKCHAIN_WEBHOOK_URL and BLOCKCHAIN_APPLICATION_ID must be set")
        headers |= signing.signature_headers(
            webhook_id=str(delivery.id),
            body=body,
            application_id=settings.BLOCKCHAIN_APPLICATION_ID,
            private_keys_pem=settings.BLOCKCHAIN_APPLICATION_SECRET_KEY,
        )
        result = _post(url, body, headers)
    except ValueError as exc:  # configuration: no URL or no usable key (the message names no secret)
        result = _HttpResult(None, "", f"configuration error: {exc}", "configuration", None, 0)
    recorded_headers = {k: v for k, v in headers.items() if k != signing.HEADER_SIGNATURE}
    return _record_attempt(delivery_id, url, attempted_at, recorded_headers, result)


def _record_attempt(
    delivery_id: UUID, url: str, attempted_at: datetime, headers: dict[str, str], result: _HttpResult
) -> DeliveryOutcome:
    succeeded = result.kind == "ok"
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(id=delivery_id)
        WebhookDeliveryAttempt.objects.create(
            delivery=delivery,
            attempted_at=attempted_at,
            url=redact(url),  # credentials in a URL never reach the database
            request_headers=headers,
            response_status=result.status,
            response_body=result.body,
            duration_ms=result.duration_ms,
            error=result.error,
            succeeded=succeeded,
        )
        delivery.attempt_count += 1  # under the row lock: no lost update
        delivery.locked_until = None
        now = timezone.now()
        retry_in: float | None = None
        if succeeded:
            delivery.status = WebhookDelivery.Status.SUCCESS
            delivery.last_error = ""
            delivery.completed_at = now
        elif result.kind == "http_410" or delivery.attempt_count > settings.WEBHOOK_MAX_RETRIES:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.last_error = result.error + (
                " (endpoint gone: retries stopped)" if result.kind == "http_410" else ""
            )
            delivery.completed_at = now
        else:
            retry_in = backoff_seconds(delivery.attempt_count)
            if result.retry_after is not None:
                retry_in = min(max(retry_in, result.retry_after), settings.WEBHOOK_RETRY_MAX_SECONDS)
            delivery.last_error = result.error
            delivery.next_attempt_at = now + timedelta(seconds=retry_in)
        delivery.save(
            update_fields=["attempt_count", "locked_until", "status", "last_error", "completed_at", "next_attempt_at"]
        )
    logger.info(
        "webhook try delivery_id=%s attempt=%s outcome=%s status=%s duration_ms=%s",
        delivery_id,
        delivery.attempt_count,
        result.kind,
        delivery.status,
        result.duration_ms,
    )
    final_failure = delivery.status == WebhookDelivery.Status.FAILED
    return DeliveryOutcome(delivery_id, delivery.status, retry_in, final_failure)


def alert_delivery_failed(*, delivery_id: UUID) -> bool:
    """One Discord alert for a delivery that ended FAILED (rate-limited per cause; never raises)."""
    try:
        delivery = WebhookDelivery.objects.get(id=delivery_id)
        last = delivery.attempts.order_by("-attempted_at", "-id").first()
        kind = (
            "timeout"
            if last and last.error.startswith("timeout")
            else "connection"
            if last and last.response_status is None
            else f"http_{last.response_status}"
            if last
            else "unknown"
        )
        return send_alert(
            cause=f"webhook-delivery-failed:{kind}",
            title="Webhook delivery to the blockchain service failed",
            description=f"Gave up after {delivery.attempt_count} tries. Resend it from the admin or the API.",
            fields=[
                AlertField("Agreement", str(delivery.agreement_id)),
                AlertField("Event", delivery.event_type),
                AlertField("Delivery", str(delivery.id)),
                AlertField("Last error", delivery.last_error or "-"),
            ],
        )
    except Exception:  # noqa: BLE001 - an alert never fails the task
        logger.warning("could not build delivery alert delivery_id=%s", delivery_id)
        return False


# --- Operators: resend ----------------------------------------------------------------------------
def webhook_delivery_resend(*, delivery_id: UUID) -> WebhookDelivery:
    """Send a finished (FAILED or SUCCESS) delivery again, same id, a fresh round of tries."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(id=delivery_id)
        if delivery.status == WebhookDelivery.Status.PENDING:
            raise IllegalTransitionError("Delivery", delivery.status, "resent (it is still being delivered)")
        _reset_for_resend(delivery)
        delivery.save(update_fields=["status", "attempt_count", "next_attempt_at", "locked_until", "completed_at"])
        transaction.on_commit(partial(enqueue_delivery, delivery.id), robust=True)
    logger.info("delivery resent delivery_id=%s", delivery.id)
    return delivery


def _reset_for_resend(delivery: WebhookDelivery) -> None:
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.attempt_count = 0
    delivery.next_attempt_at = timezone.now()
    delivery.locked_until = None
    delivery.completed_at = None


def webhook_deliveries_resend_failed(*, since: datetime) -> list[UUID]:
    """Resend every delivery that ended FAILED at or after `since`; returns their ids."""
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookDelivery.Status.FAILED, completed_at__gte=since)
            .values_list("id", flat=True)
        )
        WebhookDelivery.objects.filter(id__in=ids, status=WebhookDelivery.Status.FAILED).update(
            status=WebhookDelivery.Status.PENDING,
            attempt_count=0,
            next_attempt_at=timezone.now(),
            locked_until=None,
            completed_at=None,
        )
        for delivery_id in ids:
            transaction.on_commit(partial(enqueue_delivery, delivery_id), robust=True)
    logger.info("failed deliveries resent count=%s since=%s", len(ids), since.isoformat())
    return ids


# --- Sweeper --------------------------------------------------------------------------------------
def webhook_deliveries_sweep(*, limit: int = 1000) -> int:
    """Re-enqueue PENDING deliveries overdue by WEBHOOK_SWEEP_AFTER_SECONDS (lost by the broker)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    overdue = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=cutoff)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    swept = 0
    for delivery_id in overdue:
        # Restart the clock so the next sweep does not enqueue it again while it waits in the queue.
        touched = WebhookDelivery.objects.filter(
            id=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=cutoff
        ).update(next_attempt_at=now)
        if touched and enqueue_delivery(delivery_id):
            swept += 1
    if overdue:
        logger.info("deliveries swept count=%s of=%s", swept, len(overdue))
    return swept
