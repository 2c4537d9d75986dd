"""Operator and periodic operations on distributions: retry, scheduled runs, the sweeper.

Every periodic function handles each item on its own: one failure is logged and counted, and the
others still run (upstream's one-error-aborts-everything defect).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Sum
from django.utils import timezone

from chain.models import ChainTransaction
from config.enqueue import publish, publish_on_commit
from config.errors import Conflict, NotFound
from payouts.models import Asset, BatchPayout, Distribution, HolderPayment
from payouts.services.assets import asset_sync_stalled
from payouts.services.catch_up import distribution_start_due
from payouts.services.execution import distribution_plan_stalled
from payouts.services.funding import funds_read, funds_require, planned_need

logger = logging.getLogger(__name__)

Status = Distribution.Status
SCHEDULED_RUN_LIMIT = 500


def distribution_retry(*, distribution_id: uuid.UUID) -> Distribution:
    """FAILED -> IN_PROGRESS, re-submitting only holders not yet paid, at most PAYOUT_MAX_RETRIES each."""
    from payouts.tasks import plan_distribution_task, submit_batches_task

    now = timezone.now()
    unlocked = Distribution.objects.select_related("asset").filter(pk=distribution_id).first()
    if unlocked is None:
        raise NotFound("distribution not found")
    read = funds_read(unlocked.asset) if unlocked.status == Status.FAILED and not unlocked.asset.is_paused else None
    with transaction.atomic():
        asset = Asset.objects.select_for_update().get(pk=unlocked.asset_id)  # one start at a time per contract
        distribution = Distribution.objects.select_for_update().select_related("asset").get(pk=distribution_id)
        if distribution.status != Status.FAILED:
            raise Conflict(f"only FAILED distributions can be retried (this one is {distribution.status})")
        if asset.is_paused:
            raise Conflict("the asset is paused: unpause it first")
        if read is None:
            raise Conflict("the asset changed while the retry was starting: try again")
        retrying = HolderPayment.objects.filter(
            distribution=distribution,
            status=HolderPayment.Status.FAILED,
            retry_count__lt=settings.PAYOUT_MAX_RETRIES,
        )
        if distribution.holders_count is None:
            # Planning failed: it plans again, so it needs what a start needs (a PERCENTAGE: something
            # available), or it would only fail the same way.
            need, what = max(planned_need(distribution), 1), "planning it again"
        else:
            need, what = int(retrying.aggregate(total=Sum("amount"))["total"] or 0), "retrying its failed holders"
        funds_require(asset, read, need=need, exclude=distribution.pk, what=what)
        distribution.mark_in_progress()
        if distribution.holders_count is None:  # planning itself failed: plan again
            publish_on_commit(plan_distribution_task, str(distribution_id))
            return distribution
        retried = HolderPayment.MOVES.claim(
            retrying,
            HolderPayment.Status.RETRYING,
            retry_count=F("retry_count") + 1,
            next_retry_at=None,
            updated_at=now,
        )
        if retried == 0:
            raise Conflict(
                f"no holder can be retried: every failed holder was retried {settings.PAYOUT_MAX_RETRIES} times"
            )
        BatchPayout.MOVES.claim(
            BatchPayout.objects.filter(
                distribution=distribution,
                number__in=HolderPayment.objects.filter(
                    distribution=distribution, status=HolderPayment.Status.RETRYING
                ).values("batch_number"),
            ),
            BatchPayout.Status.PENDING,
            error="",
            updated_at=now,
        )
        distribution.failed_count = F("failed_count") - retried
        distribution.save(update_fields=["failed_count", "updated_at"])
        publish_on_commit(submit_batches_task, str(distribution_id))
    distribution.refresh_from_db()
    logger.info("distribution retry distribution_id=%s holders=%s", distribution_id, retried)
    return distribution


def retry_failed_holder_payments(*, now: datetime | None = None) -> dict[str, int]:
    """The hourly retry: every FAILED distribution with holders due for another attempt."""
    now = now or timezone.now()
    due_holders = HolderPayment.objects.filter(
        distribution=OuterRef("pk"),
        status=HolderPayment.Status.FAILED,
        retry_count__lt=settings.PAYOUT_MAX_RETRIES,
        next_retry_at__lte=now,
    )
    ids = list(
        Distribution.objects.filter(status=Status.FAILED, holders_count__isnull=False, asset__is_paused=False)
        .filter(Exists(due_holders))
        .values_list("id", flat=True)[:SCHEDULED_RUN_LIMIT]
    )
    return _each(ids, distribution_retry, "retry")


def run_scheduled_distributions(*, now: datetime | None = None) -> dict[str, int]:
    """Start every due SCHEDULED distribution, however long ago it fell due (downtime included).

    A recurring series that missed occurrences (downtime, a paused asset) follows its catch-up policy.
    """
    now = now or timezone.now()
    ids = list(
        Distribution.objects.filter(status=Status.SCHEDULED, scheduled_at__lte=now, asset__is_paused=False)
        .order_by("scheduled_at")
        .values_list("id", flat=True)[:SCHEDULED_RUN_LIMIT]
    )
    return _each(ids, partial(distribution_start_due, now=now), "scheduled start")


def _each(ids: list[uuid.UUID], action: object, label: str) -> dict[str, int]:
    done = skipped = failed = 0
    for distribution_id in ids:
        try:
            action(distribution_id=distribution_id)  # type: ignore[operator]
            done += 1
        except Conflict as exc:
            skipped += 1
            logger.info("%s skipped distribution_id=%s reason=%s", label, distribution_id, exc)
        except Exception:
            failed += 1
            logger.exception("%s failed distribution_id=%s", label, distribution_id)
    return {"done": done, "skipped": skipped, "failed": failed}


def distributions_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue work stuck in flight because the broker lost a message (or a worker died)."""
    from payouts.tasks import plan_distribution_task, reconcile_batch_task, submit_batches_task, sync_asset_task

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PAYOUT_STUCK_AFTER_SECONDS)
    unplanned = Distribution.objects.filter(
        status=Status.IN_PROGRESS, holders_count__isnull=True, updated_at__lt=cutoff
    )
    plans = stalled = 0
    for distribution_id, sweeps in unplanned.values_list("id", "plan_sweeps")[:SCHEDULED_RUN_LIMIT]:
        if sweeps >= settings.PAYOUT_MAX_SWEEPS:
            stalled += distribution_plan_stalled(distribution_id=distribution_id, sweeps=sweeps)
        elif Distribution.objects.filter(pk=distribution_id, plan_sweeps=sweeps).update(plan_sweeps=sweeps + 1):
            publish(plan_distribution_task, str(distribution_id))  # each chunk resets the count
            plans += 1
    pending = list(
        Distribution.objects.filter(
            status=Status.IN_PROGRESS, asset__is_paused=False, asset__pause_state=Asset.PauseState.ACTIVE
        )
        .filter(
            Exists(
                BatchPayout.objects.filter(
                    distribution=OuterRef("pk"), status=BatchPayout.Status.PENDING, updated_at__lt=cutoff
                )
            )
        )
        .values_list("id", flat=True)[:SCHEDULED_RUN_LIMIT]
    )
    for distribution_id in pending:
        publish(submit_batches_task, str(distribution_id))
    unconfirmed = _batches_with_final_transactions(cutoff)
    for batch_id, attempts in unconfirmed:
        publish(reconcile_batch_task, batch_id, attempts)
    syncing = Asset.objects.filter(
        sync_status=Asset.SyncStatus.SYNCING,
        updated_at__lt=now - timedelta(seconds=settings.PAYOUT_SYNC_STUCK_AFTER_SECONDS),
    )
    syncs = 0
    for asset_id, sweeps in syncing.values_list("id", "sync_sweeps")[:SCHEDULED_RUN_LIMIT]:
        if sweeps >= settings.PAYOUT_MAX_SWEEPS:
            stalled += asset_sync_stalled(asset_id=asset_id, sweeps=sweeps)
        elif Asset.objects.filter(pk=asset_id, sync_sweeps=sweeps).update(sync_sweeps=sweeps + 1):
            publish(sync_asset_task, str(asset_id))  # each page stored resets the count
            syncs += 1
    counts = {
        "plans": plans,
        "submissions": len(pending),
        "reconciles": len(unconfirmed),
        "syncs": syncs,
        "stalled": stalled,
    }
    if any(counts.values()):
        logger.warning("sweeper re-enqueued stuck work %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def _batches_with_final_transactions(cutoff: datetime) -> list[tuple[int, int]]:
    """IN_PROGRESS batches whose lane transaction is final but whose results were never applied."""

    final = ChainTransaction.objects.filter(
        id=OuterRef("chain_transaction_id"), status__in=["CONFIRMED", "REVERTED", "FAILED", "CANCELLED"]
    )
    return list(
        BatchPayout.objects.filter(status=BatchPayout.Status.IN_PROGRESS, submitted_at__lt=cutoff)
        .filter(Exists(final))
        .values_list("id", "attempts")[:SCHEDULED_RUN_LIMIT]
    )
