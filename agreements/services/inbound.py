"""Inbound blockchain webhooks: verify, validate, store once, process in a task, retry, alert.

Order of checks (nothing is stored unless all pass): size (413), signature and timestamp (401),
JSON (400), body shape and types (400), known agreement (422), then replay and duplicates:
the same `webhook-id` with the same body is acknowledged again (200), with another body refused
(409); a `tx_hash` already received is acknowledged (200) and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agreements import signing
from agreements.models import Agreement, AgreementBlockchainLog, InboundBlockchainEvent
from agreements.services.outbound import backoff_seconds, publish_now
from config.alerts import AlertField, send_alert

logger = logging.getLogger(__name__)

PROCESS_TASK = "agreements.tasks.process_blockchain_event_task"
MAX_BODY_BYTES = 256 * 1024
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64,96}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UPDATE_EVENTS = {
    "COMPLETED": AgreementBlockchainLog.EventType.COMPLETED,
    "CANCELLED": AgreementBlockchainLog.EventType.CANCELLED,
}
_LOG_TYPE = {
    InboundBlockchainEvent.Type.CREATE: AgreementBlockchainLog.EventType.ISSUED,
    InboundBlockchainEvent.Type.INIT_DATA: AgreementBlockchainLog.EventType.INITIALIZED,
}
_MAX_UNIX_SECONDS = 253_402_300_799  # 9999-12-31


@dataclass(frozen=True)
class InboundResult:
    status_code: int
    code: str
    detail: str
    fields: dict[str, list[str]] | None = None
    event_id: UUID | None = None


# --- Receiving ------------------------------------------------------------------------------------
def enqueue_event(event_id: UUID, *, countdown: float | None = None) -> bool:
    """Send the processing task to the broker; False (logged) if unreachable. Never raises."""
    try:
        publish_now(PROCESS_TASK, str(event_id), countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - the sweeper covers any broker failure
        logger.warning("event not enqueued, sweeper will retry event_id=%s error=%s", event_id, type(exc).__name__)
        return False
    return True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_event_body(document: object) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(the event, field errors). Types are checked strictly: no string-to-number coercion."""
    errors: dict[str, list[str]] = {}
    if not isinstance(document, dict):
        return {}, {"non_field_errors": ["The body must be a JSON object."]}
    event_type = document.get("type")
    if event_type not in InboundBlockchainEvent.Type.values:
        errors["type"] = [f"Must be one of {', '.join(InboundBlockchainEvent.Type.values)}."]
    data = document.get("data")
    if not isinstance(data, dict):
        errors["data"] = ["Must be an object with the transaction details."]
        return {}, errors

    def err(name: str, message: str) -> None:
        errors[f"data.{name}"] = [message]

    agreement_id = data.get("agreement_id")
    try:
        if not isinstance(agreement_id, str):
            raise ValueError
        UUID(agreement_id)
    except ValueError:
        err("agreement_id", "Must be a UUID string.")
    if not isinstance(data.get("tx_hash"), str) or not _TX_HASH.match(data["tx_hash"]):
        err("tx_hash", "Must be a 0x-prefixed hex transaction hash.")
    if not _is_int(data.get("tx_block_number")) or data["tx_block_number"] < 0:
        err("tx_block_number", "Must be a non-negative integer.")
    timestamp = data.get("tx_block_timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 <= timestamp <= _MAX_UNIX_SECONDS:
        err("tx_block_timestamp", "Must be unix seconds (an integer).")
    if not isinstance(data.get("contract_address"), str) or not _ADDRESS.match(data["contract_address"]):
        err("contract_address", "Must be a 0x-prefixed 20-byte hex address.")
    inner = data.get("data")
    if not isinstance(inner, dict):
        err("data", "Must be an object (may be empty).")
    elif (
        event_type == InboundBlockchainEvent.Type.UPDATE
        and str(inner.get("event_type", "")).upper() not in _UPDATE_EVENTS
    ):
        err("data.event_type", "An UPDATE must say COMPLETED or CANCELLED.")
    return ({"type": event_type, "data": data} if not errors else {}), errors


def blockchain_webhook_receive(*, headers: Mapping[str, str], body: bytes) -> InboundResult:
    """Authenticate, validate and store one inbound webhook; its processing is enqueued after commit."""
    if len(body) > MAX_BODY_BYTES:
        return InboundResult(413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        message = signing.verify(
            headers=headers,
            body=body,
            application_id=settings.BLOCKCHAIN_APPLICATION_ID,
            public_keys_pem=settings.BLOCKCHAIN_APPLICATION_PUBLIC_KEY,
        )
    except signing.SignatureError as exc:
        logger.warning("inbound webhook refused: not authentic reason=%s", exc)
        return InboundResult(401, "not_authenticated", str(exc))
    except ValueError:
        logger.error("inbound webhook refused: BLOCKCHAIN_APPLICATION_PUBLIC_KEY is not usable")
        return InboundResult(401, "not_authenticated", "Signatures cannot be verified.")

    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return InboundResult(400, "invalid_json", "The body is not valid JSON.")
    event, errors = validate_event_body(document)
    if errors:
        first = next(iter(errors))
        return InboundResult(400, "invalid", f"Invalid input: {first}: {errors[first][0]}", fields=errors)
    data = event["data"]
    agreement_id = UUID(data["agreement_id"])
    if not Agreement.objects.filter(id=agreement_id).exists():
        return InboundResult(422, "unknown_agreement", f"No agreement {agreement_id}.")
    return _store(message.webhook_id, hashlib.sha256(body).hexdigest(), event, agreement_id)


def _duplicate(webhook_id: str, body_sha256: str, tx_hash: str) -> InboundResult | None:
    seen = InboundBlockchainEvent.objects.filter(webhook_id=webhook_id).values_list("body_sha256", flat=True).first()
    if seen is not None:
        if seen != body_sha256:
            logger.warning("inbound webhook refused: id reused with another body webhook_id=%s", webhook_id)
            return InboundResult(409, "replayed", "This webhook-id was already used with a different body.")
        return InboundResult(200, "duplicate", "Already received.")
    if (
        InboundBlockchainEvent.objects.filter(tx_hash=tx_hash).exists()
        or AgreementBlockchainLog.objects.filter(tx_hash=tx_hash).exists()
    ):
        return InboundResult(200, "duplicate", "This transaction was already received.")
    return None


def _store(webhook_id: str, body_sha256: str, event: dict[str, Any], agreement_id: UUID) -> InboundResult:
    tx_hash = event["data"]["tx_hash"]
    duplicate = _duplicate(webhook_id, body_sha256, tx_hash)
    if duplicate is not None:
        return duplicate
    try:
        with transaction.atomic():
            stored = InboundBlockchainEvent.objects.create(
                webhook_id=webhook_id,
                body_sha256=body_sha256,
                type=event["type"],
                agreement_id=agreement_id,
                tx_hash=tx_hash,
                payload=event,
            )
            transaction.on_commit(partial(enqueue_event, stored.id), robust=True)
    except IntegrityError:
        # A concurrent request stored the same id or transaction first: answer as if we were second.
        return _duplicate(webhook_id, body_sha256, tx_hash) or InboundResult(200, "duplicate", "Already received.")
    logger.info("inbound webhook stored event_id=%s type=%s tx_hash=%s", stored.id, stored.type, tx_hash)
    return InboundResult(202, "accepted", "Stored; it will be processed shortly.", event_id=stored.id)


# --- Processing -----------------------------------------------------------------------------------
def blockchain_event_process(*, event_id: UUID) -> str:
    """Apply a stored event once: CREATE sets the chain fields; every event writes one log row."""
    now = timezone.now()
    with transaction.atomic():
        event = InboundBlockchainEvent.objects.select_for_update().get(id=event_id)
        if event.status != InboundBlockchainEvent.Status.RECEIVED or event.next_attempt_at > now + timedelta(seconds=1):
            return "skipped"
        data: dict[str, Any] = event.payload["data"]
        agreement = Agreement.objects.select_for_update().get(id=event.agreement_id)
        block_time = datetime.fromtimestamp(data["tx_block_timestamp"], tz=UTC)
        if not AgreementBlockchainLog.objects.filter(tx_hash=event.tx_hash).exists():
            if event.type == InboundBlockchainEvent.Type.CREATE:
                agreement.tx_hash = event.tx_hash
                agreement.tx_block_number = data["tx_block_number"]
                agreement.tx_block_timestamp = block_time
                agreement.contract_address = data["contract_address"]
                agreement.save(
                    update_fields=["tx_hash", "tx_block_number", "tx_block_timestamp", "contract_address", "updated_at"]
                )
            log_type = (
                _LOG_TYPE.get(InboundBlockchainEvent.Type(event.type))
                or _UPDATE_EVENTS[str(data["data"]["event_type"]).upper()]
            )
            AgreementBlockchainLog.objects.create(
                event_type=log_type,
                agreement=agreement,
                tx_hash=event.tx_hash,
                tx_block_number=data["tx_block_number"],
                tx_block_timestamp=block_time,
                contract_address=data["contract_address"],
                data=data["data"],
            )
        event.status = InboundBlockchainEvent.Status.PROCESSED
        event.processed_at = now
        event.attempt_count += 1  # under the row lock
        event.last_error = ""
        event.save(update_fields=["status", "processed_at", "attempt_count", "last_error"])
    logger.info("inbound event processed event_id=%s type=%s agreement_id=%s", event_id, event.type, event.agreement_id)
    return InboundBlockchainEvent.Status.PROCESSED


@dataclass(frozen=True)
class ProcessingFailure:
    retry_in: float | None
    final: bool


def blockchain_event_record_failure(*, event_id: UUID, error: str) -> ProcessingFailure:
    """Count a failed processing try: schedule the next one, or mark the event FAILED."""
    with transaction.atomic():
        event = InboundBlockchainEvent.objects.select_for_update().get(id=event_id)
        if event.status != InboundBlockchainEvent.Status.RECEIVED:
            return ProcessingFailure(None, False)
        event.attempt_count += 1
        event.last_error = error[:2000]
        retry_in: float | None = None
        if event.attempt_count > settings.WEBHOOK_MAX_RETRIES:
            event.status = InboundBlockchainEvent.Status.FAILED
        else:
            retry_in = backoff_seconds(event.attempt_count)
            event.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
        event.save(update_fields=["attempt_count", "last_error", "status", "next_attempt_at"])
    return ProcessingFailure(retry_in, event.status == InboundBlockchainEvent.Status.FAILED)


def alert_event_failed(*, event_id: UUID) -> bool:
    """One Discord alert for an inbound event that could not be processed (never raises)."""
    try:
        event = InboundBlockchainEvent.objects.get(id=event_id)
        return send_alert(
            cause=f"blockchain-event-failed:{event.type}",
            title="Blockchain webhook could not be processed",
            description=f"Gave up after {event.attempt_count} tries. Reprocess it from the admin once fixed.",
            fields=[
                AlertField("Agreement", str(event.agreement_id)),
                AlertField("Event", f"{event.type} {event.tx_hash}"),
                AlertField("Inbound event", str(event.id)),
                AlertField("Last error", event.last_error or "-"),
            ],
        )
    except Exception:  # noqa: BLE001 - an alert never fails the task
        logger.warning("could not build event alert event_id=%s", event_id)
        return False


def blockchain_event_reprocess(*, event_id: UUID) -> InboundBlockchainEvent:
    """Give a FAILED inbound event a fresh round of processing tries."""
    with transaction.atomic():
        event = InboundBlockchainEvent.objects.select_for_update().get(id=event_id)
        if event.status == InboundBlockchainEvent.Status.FAILED:
            event.status = InboundBlockchainEvent.Status.RECEIVED
            event.attempt_count = 0
            event.next_attempt_at = timezone.now()
            event.save(update_fields=["status", "attempt_count", "next_attempt_at"])
            transaction.on_commit(partial(enqueue_event, event.id), robust=True)
    return event


def blockchain_events_sweep(*, limit: int = 1000) -> int:
    """Re-enqueue RECEIVED events overdue by WEBHOOK_SWEEP_AFTER_SECONDS (lost by the broker)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    overdue = list(
        InboundBlockchainEvent.objects.filter(
            status=InboundBlockchainEvent.Status.RECEIVED, next_attempt_at__lte=cutoff
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    swept = 0
    for event_id in overdue:
        touched = InboundBlockchainEvent.objects.filter(
            id=event_id, status=InboundBlockchainEvent.Status.RECEIVED, next_attempt_at__lte=cutoff
        ).update(next_attempt_at=now)
        if touched and enqueue_event(event_id):
            swept += 1
    return swept
