"""Outbound webhooks: the outbox row, one signed try and its record, and resend.

A delivery is claimed by a conditional UPDATE (`status=PENDING`, due, lease free) before it is
sent, so duplicate task messages (sweeper plus original) never send the same try twice at once.
The HTTP request happens outside any transaction; the attempt row and the delivery's new state
are written together afterwards. Enqueueing, retry counting, the sweeper and the final alert are
the outbox's bookkeeping (`agreements.outbox`, shared with inbound events).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from uuid import UUID

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agreements import signing
from agreements.models import Agreement, WebhookDelivery, WebhookDeliveryAttempt
from agreements.outbox import FailedTry, Outbox
from agreements.payloads import encode_body
from agreements.selectors import locked_get
from config.instruments import WEBHOOK_DELIVERY_ATTEMPT_SECONDS, WEBHOOK_DELIVERY_ATTEMPTS
from config.logging import redact
from config.states import IllegalTransition

logger = logging.getLogger(__name__)

RESPONSE_BODY_LIMIT = 2000
USER_AGENT = "moneyguard-backend-webhooks/1"
_CLAIM_TOLERANCE = timedelta(seconds=1)  # an ETA may fire a hair before the stored due time


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: UUID
    status: str  # a WebhookDelivery.Status, or "skipped" when the delivery was not ours to send
    failure: FailedTry | None = None  # a failed try: when the next one is due, or that it gave up


# --- The outbox and creating ---------------------------------------------------------------------
def _alert_describe(delivery: WebhookDelivery) -> tuple[str, str]:
    """(alert cause, event) of a delivery that gave up; the cause names how its last try failed."""
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
    return f"webhook-delivery-failed:{kind}", delivery.event_type


DELIVERIES: Outbox[WebhookDelivery] = Outbox(
    model=WebhookDelivery,
    moves=WebhookDelivery.MOVES,
    task="agreements.tasks.deliver_webhook_task",
    noun="delivery",
    pending=WebhookDelivery.Status.PENDING,
    failed=WebhookDelivery.Status.FAILED,
    alert_title="Webhook delivery to the blockchain service failed",
    alert_remedy="Resend it from the admin or the API.",
    alert_row_label="Delivery",
    alert_describe=_alert_describe,
    leased=True,
    finished_at="completed_at",
)


def webhook_delivery_create(*, agreement: Agreement, event_type: str, payload: dict[str, Any]) -> WebhookDelivery:
    """Write the outbox row inside the caller's transaction; enqueue its task after commit."""
    delivery = WebhookDelivery.objects.create(agreement=agreement, event_type=event_type, payload=payload)
    DELIVERIES.enqueue_on_commit(delivery.id)
    return delivery


# --- Retry policy ---------------------------------------------------------------------------------
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
        now = timezone.now()
        failure: FailedTry | None = None
        if delivery.status != WebhookDelivery.Status.PENDING:
            # This try outlived its lease and another one finished the delivery: the try is kept, its
            # outcome is not (PENDING is the only state a try moves from).
            logger.warning("webhook try outlived its lease delivery_id=%s status=%s", delivery_id, delivery.status)
        elif succeeded:
            delivery.mark_success(now=now)  # under the row lock: no lost update of the count
        else:
            delivery.locked_until = None
            gone = result.kind == "http_410"
            failure = DELIVERIES.count_failure(
                delivery,
                error=result.error + (" (endpoint gone: retries stopped)" if gone else ""),
                now=now,
                give_up=gone,
                wait_at_least=result.retry_after,
            )
            delivery.save(update_fields=[*DELIVERIES.failure_fields, "locked_until"])
    WEBHOOK_DELIVERY_ATTEMPTS.labels(result.kind).inc()
    WEBHOOK_DELIVERY_ATTEMPT_SECONDS.observe(result.duration_ms / 1000)
    logger.info(
        "webhook try delivery_id=%s attempt=%s outcome=%s status=%s duration_ms=%s",
        delivery_id,
        delivery.attempt_count,
        result.kind,
        delivery.status,
        result.duration_ms,
    )
    return DeliveryOutcome(delivery_id, delivery.status, failure)


# --- Operators: resend ----------------------------------------------------------------------------
def webhook_delivery_resend(*, delivery_id: UUID) -> WebhookDelivery:
    """Send a finished (FAILED or SUCCESS) delivery again, same id, a fresh round of tries."""
    with transaction.atomic():
        delivery = locked_get(WebhookDelivery, delivery_id, what="webhook delivery")
        if delivery.status == WebhookDelivery.Status.PENDING:
            raise IllegalTransition("Delivery", delivery.status, "resent (it is still being delivered)")
        DELIVERIES.reopen(delivery)
    logger.info("delivery resent delivery_id=%s", delivery.id)
    return delivery


def webhook_deliveries_resend_failed(*, since: datetime) -> list[UUID]:
    """Resend every delivery that ended FAILED at or after `since`; returns their ids."""
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookDelivery.Status.FAILED, completed_at__gte=since)
            .values_list("id", flat=True)
        )
        DELIVERIES.reopen_failed(ids)
    logger.info("failed deliveries resent count=%s since=%s", len(ids), since.isoformat())
    return ids
