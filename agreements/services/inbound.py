"""Inbound blockchain webhooks: verify, validate, store once, process in a task, retry, alert.

Order of checks (nothing is stored unless all pass): size (413), signature and timestamp (401),
the application's rate limit (429; the view limits per client address before all of these),
JSON (400), body shape and types (400), known agreement (422), then replay and duplicates:
the same `webhook-id` with the same body is acknowledged again (200), with another body refused
(409); a `tx_hash` already received is acknowledged (200) and changes nothing.

Enqueueing, retry counting, the sweeper and the final alert are the outbox's bookkeeping
(`agreements.outbox`, shared with outbound deliveries).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agreements import signing
from agreements.models import Agreement, AgreementBlockchainLog, InboundBlockchainEvent
from agreements.outbox import FailedTry, Outbox
from agreements.selectors import locked_get
from config import jsonbody, throttling
from config.errors import Conflict

logger = logging.getLogger(__name__)

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
    retry_after: int | None = None  # seconds, on a 429


# --- Receiving ------------------------------------------------------------------------------------
def _alert_describe(event: InboundBlockchainEvent) -> tuple[str, str]:
    """(alert cause, event) of an inbound event that could not be processed."""
    return f"blockchain-event-failed:{event.type}", f"{event.type} {event.tx_hash}"


EVENTS: Outbox[InboundBlockchainEvent] = Outbox(
    model=InboundBlockchainEvent,
    moves=InboundBlockchainEvent.MOVES,
    task="agreements.tasks.process_blockchain_event_task",
    noun="event",
    pending=InboundBlockchainEvent.Status.RECEIVED,
    failed=InboundBlockchainEvent.Status.FAILED,
    alert_title="Blockchain webhook could not be processed",
    alert_remedy="Reprocess it from the admin once fixed.",
    alert_row_label="Inbound event",
    alert_describe=_alert_describe,
)


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


def service_public_keys_pem() -> str:
    """BLOCKCHAIN_SERVICE_PUBLIC_KEY as one text: PEM blocks concatenated, or a list of them (rotation)."""
    configured: str | Sequence[str] = settings.BLOCKCHAIN_SERVICE_PUBLIC_KEY
    return configured if isinstance(configured, str) else "\n".join(configured)


def blockchain_webhook_receive(*, headers: Mapping[str, str], body: bytes) -> InboundResult:
    """Authenticate, validate and store one inbound webhook; its processing is enqueued after commit.

    Verified with the blockchain service's public key, never with our own key pair (outbound only).
    """
    if len(body) > MAX_BODY_BYTES:
        return InboundResult(413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        message = signing.verify(
            headers=headers,
            body=body,
            application_id=settings.BLOCKCHAIN_APPLICATION_ID,
            public_keys_pem=service_public_keys_pem(),
            own_private_keys_pem=settings.BLOCKCHAIN_APPLICATION_SECRET_KEY,
        )
    except signing.SignatureError as exc:
        logger.warning("inbound webhook refused: not authentic reason=%s", exc)
        return InboundResult(401, "not_authenticated", str(exc))
    except ValueError as exc:
        logger.error("inbound webhook refused: BLOCKCHAIN_SERVICE_PUBLIC_KEY is not usable reason=%s", exc)
        return InboundResult(401, "not_authenticated", "Signatures cannot be verified.")
    # Counted only once the signature is verified: forgeries naming our id never use up its allowance.
    wait = throttling.take(
        "inbound-application", settings.BLOCKCHAIN_APPLICATION_ID, settings.THROTTLE_INBOUND_APPLICATION_RATE
    )
    if wait is not None:
        logger.warning("inbound webhook refused: application rate limit webhook_id=%s", message.webhook_id)
        return InboundResult(429, "throttled", throttling.throttled_detail(wait), retry_after=wait)

    if jsonbody.too_deep(body):
        return InboundResult(400, "invalid_json", jsonbody.TOO_DEEP)
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
            EVENTS.enqueue_on_commit(stored.id)
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
        event.mark_processed(now=now)
    logger.info("inbound event processed event_id=%s type=%s agreement_id=%s", event_id, event.type, event.agreement_id)
    return InboundBlockchainEvent.Status.PROCESSED


def blockchain_event_record_failure(*, event_id: UUID, error: str) -> FailedTry | None:
    """Count a failed processing try: schedule the next one, or mark the event FAILED.

    None when the event was no longer waiting for a try (nothing to count).
    """
    with transaction.atomic():
        event = InboundBlockchainEvent.objects.select_for_update().get(id=event_id)
        if event.status != InboundBlockchainEvent.Status.RECEIVED:
            return None
        failure = EVENTS.count_failure(event, error=error[:2000], now=timezone.now())
        event.save(update_fields=EVENTS.failure_fields)
    return failure


def blockchain_event_reprocess(*, event_id: UUID) -> InboundBlockchainEvent:
    """Give a FAILED inbound event a fresh round of processing tries; any other status is a `Conflict`."""
    with transaction.atomic():
        event = locked_get(InboundBlockchainEvent, event_id, what="blockchain event")
        if event.status != InboundBlockchainEvent.Status.FAILED:
            raise Conflict(f"Only FAILED events can be reprocessed (this one is {event.status}).")
        EVENTS.reopen(event)
    return event
