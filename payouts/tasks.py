"""Celery tasks of the payouts app: thin wrappers that take ids and call one service.

Execution tasks are idempotent (every service re-checks state under a lock or a conditional
UPDATE), hence `acks_late=True`; periodic tasks hold a Redis lock so two runs never overlap.
"""

from __future__ import annotations

import uuid

from celery import shared_task
from django.utils import timezone

from chain.errors import TransientChainError
from config.enqueue import publish
from config.errors import Conflict
from config.locks import redis_lock, single_instance
from config.retries import INFRASTRUCTURE_ERRORS
from payouts import services

# Retried: the chain, the database or Redis was down. Anything else is a bug or a refusal: it fails
# at once (and the services record why on the distribution or asset).
TRANSIENT: tuple[type[Exception], ...] = (TransientChainError, *INFRASTRUCTURE_ERRORS)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=300, max_retries=5)
def plan_distribution_task(distribution_id: str) -> None:
    """One chunk of planning; the next chunk is queued once this one's lock is released."""
    # One planner per distribution at a time; a second one would only find the chunk read.
    with redis_lock(f"payouts:plan:{distribution_id}", timeout=900) as acquired:
        more = acquired and services.distribution_plan_step(distribution_id=uuid.UUID(distribution_id))
    if more:
        publish(plan_distribution_task, distribution_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=300, max_retries=5)
def start_distribution_task(distribution_id: str) -> str:
    """Start a due distribution now (AUTOMATED ones when payment tokens arrive); a refusal is recorded
    on the distribution when there is something to fix (funds), and the scheduled run tries again."""
    try:
        services.distribution_start_due(distribution_id=uuid.UUID(distribution_id), now=timezone.now())
    except Conflict as exc:
        return f"not started: {exc}"
    return "started"


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=300, max_retries=5)
def submit_batches_task(distribution_id: str) -> int:
    return services.distribution_submit_batches(distribution_id=uuid.UUID(distribution_id))


@shared_task(acks_late=True, bind=True, max_retries=10)
def reconcile_batch_task(self: object, batch_id: int, attempt: int) -> bool:
    applied = services.batch_reconcile(batch_id=batch_id, attempt=attempt)
    if not applied:
        # The receipt is not readable yet: ask again shortly (the sweeper is the backstop).
        raise self.retry(countdown=5)  # type: ignore[attr-defined]
    return applied


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=300, max_retries=5)
def sync_asset_task(asset_id: str) -> None:
    """One chunk of a sync; the next chunk is queued once this one's lock is released."""
    with redis_lock(f"payouts:sync:{asset_id}", timeout=1800) as acquired:
        more = acquired and services.asset_sync_step(asset_id=uuid.UUID(asset_id))
    if more:
        publish(sync_asset_task, asset_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=300, max_retries=5)
def refresh_asset_pause_task(asset_id: str) -> None:
    services.asset_pause_refresh(asset_id=uuid.UUID(asset_id))


@shared_task
@single_instance("payouts.run_scheduled_distributions")
def run_scheduled_distributions_task() -> dict[str, int]:
    return services.run_scheduled_distributions()


@shared_task
@single_instance("payouts.retry_failed_holder_payments")
def retry_failed_holder_payments_task() -> dict[str, int]:
    return services.retry_failed_holder_payments()


@shared_task
@single_instance("payouts.sync_assets")
def sync_assets_task() -> int:
    return services.assets_sync_due()


@shared_task
@single_instance("payouts.reconcile_recent_distributions")
def reconcile_recent_distributions_task() -> int:
    """Daily: the distributions finished in the last day against the chain; alerts on any difference."""
    return services.distributions_reconcile_recent()


@shared_task
@single_instance("payouts.sweep_stuck_distributions")
def sweep_stuck_distributions_task() -> dict[str, int]:
    return services.distributions_sweep()
