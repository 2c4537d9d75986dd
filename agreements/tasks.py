"""Celery tasks of the agreements app: thin wrappers that own only retry, lock and time-limit policy.

`deliver_*` and `process_*` run on the `webhooks` queue (see config/celery_app.py); the periodic
ones (`mark_overdue_agreements_task`, `sweep_webhook_deliveries_task`) on `default`.
"""

from __future__ import annotations

import logging
from uuid import UUID

from celery import shared_task
from django.conf import settings

from agreements.services.agreements import agreements_mark_overdue
from agreements.services.inbound import EVENTS, blockchain_event_process, blockchain_event_record_failure
from agreements.services.outbound import DELIVERIES, webhook_delivery_send
from config.locks import single_instance
from config.logging import redact

logger = logging.getLogger(__name__)

_DELIVERY_TIME_LIMIT = int(settings.WEBHOOK_TIMEOUT_SECONDS) + 60


# Idempotent: a delivery is claimed before each try, and receivers dedupe by webhook-id.
@shared_task(acks_late=True, soft_time_limit=_DELIVERY_TIME_LIMIT, time_limit=_DELIVERY_TIME_LIMIT + 30)
def deliver_webhook_task(delivery_id: str) -> str:
    """One try of an outbound webhook; schedules the next try or raises the final alert."""
    outcome = webhook_delivery_send(delivery_id=UUID(delivery_id))
    if outcome.failure is not None:
        DELIVERIES.follow_up(outcome.delivery_id, outcome.failure)
    return outcome.status


# Idempotent: the event row is locked and its status checked; log rows are unique by tx_hash.
@shared_task(acks_late=True)
def process_blockchain_event_task(event_id: str) -> str:
    """Apply one stored inbound event; on error retry with backoff, then alert once."""
    try:
        return blockchain_event_process(event_id=UUID(event_id))
    except Exception as exc:
        logger.warning("inbound event processing failed event_id=%s error=%s", event_id, type(exc).__name__)
        failure = blockchain_event_record_failure(event_id=UUID(event_id), error=redact(f"{type(exc).__name__}: {exc}"))
        if failure is None:
            return "failed"
        EVENTS.follow_up(UUID(event_id), failure)
        return "retrying" if failure.retry_in is not None else "failed"


@shared_task
@single_instance("agreements.mark_overdue")
def mark_overdue_agreements_task() -> int:
    """Move IN_PROGRESS agreements past their repayment end date to OVERDUE (each emits its webhook)."""
    return len(agreements_mark_overdue())


@shared_task
@single_instance("agreements.sweep_webhooks")
def sweep_webhook_deliveries_task() -> dict[str, int]:
    """Re-enqueue pending deliveries and unprocessed inbound events that the broker lost, and send the
    alerts still owed by rows that gave up (their worker died before sending them)."""
    return {
        "deliveries": DELIVERIES.sweep(),
        "inbound_events": EVENTS.sweep(),
        "owed_alerts": DELIVERIES.send_owed_alerts() + EVENTS.send_owed_alerts(),
    }
