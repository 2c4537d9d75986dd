"""The Celery app, its queues and routes, and the periodic schedules declared in code.

Queues, one per concern:
  chain     transaction submission: the ordered signer lane
  events    chain polling (listeners)
  webhooks  outbound webhook deliveries and inbound webhook processing
  default   everything else (execution planning, sweepers, alerts)

Periodic schedules are declared here (`declared_schedules`) and written to django-celery-beat's
tables by `manage.py sync_schedules`, run on every release. Operators may edit them in the admin
afterwards; a sync only rewrites an entry when its declaration in code changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from celery import Celery
from celery.signals import worker_process_shutdown
from kombu import Queue

from config.instruments import process_exited

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "chain", "events", "webhooks")]
app.conf.task_routes = {
    "chain.tasks.submit_*": {"queue": "chain"},
    "chain.tasks.cancel_*": {"queue": "chain"},
    "chain.tasks.poll_*": {"queue": "events"},
    "agreements.tasks.deliver_*": {"queue": "webhooks"},
    "agreements.tasks.process_*": {"queue": "webhooks"},
    "*": {"queue": "default"},
}
app.autodiscover_tasks()


@worker_process_shutdown.connect
def _forget_exited_process_metrics(pid: int | None = None, **_: object) -> None:
    """A prefork child exits: multiprocess metrics forget its live gauges (`config.instruments`)."""
    process_exited(pid or os.getpid())


@dataclass(frozen=True)
class PeriodicSchedule:
    """One periodic task. Exactly one of `every_seconds` and `cron` is set."""

    task: str
    description: str
    every_seconds: int | None = None
    cron: str | None = None  # 5 fields, or 6 with a leading seconds field that must be 0
    kwargs: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        if (self.every_seconds is None) == (self.cron is None):
            raise ValueError(f"{self.task}: set exactly one of every_seconds and cron")


def declared_schedules() -> dict[str, PeriodicSchedule]:
    """Every periodic task of the project, keyed by its unique schedule name.

    Read lazily (a function, not a constant) so that values can come from django settings.
    """
    from django.conf import settings

    return {
        "payouts-run-scheduled": PeriodicSchedule(
            task="payouts.tasks.run_scheduled_distributions_task",
            cron=settings.SCHEDULED_PAYOUTS_CRON,
            description="Starts every due SCHEDULED distribution, including ones missed while down.",
        ),
        "payouts-retry-failed-holders": PeriodicSchedule(
            task="payouts.tasks.retry_failed_holder_payments_task",
            cron="0 * * * *",
            description="Retries failed holder payments (at most PAYOUT_MAX_RETRIES each), hourly.",
        ),
        "payouts-sync-assets": PeriodicSchedule(
            task="payouts.tasks.sync_assets_task",
            cron="*/30 * * * *",
            description="Re-syncs holders and balances of every asset with sync enabled.",
        ),
        "payouts-reconcile-recent": PeriodicSchedule(
            task="payouts.tasks.reconcile_recent_distributions_task",
            cron="17 3 * * *",
            description="Reconciles distributions finished in the last day with the chain; alerts on any difference.",
        ),
        "payouts-sweep-stuck": PeriodicSchedule(
            task="payouts.tasks.sweep_stuck_distributions_task",
            every_seconds=settings.PAYOUT_SWEEP_EVERY_SECONDS,
            description="Re-enqueues planning, submissions and confirmations stuck in flight.",
        ),
        "chain-poll-listeners": PeriodicSchedule(
            task="chain.tasks.poll_listeners_task",
            every_seconds=max(1, settings.BLOCKCHAIN_POLLING_INTERVAL // 1000),
            description="Fans out one poll per enabled chain event listener (BLOCKCHAIN_POLLING_INTERVAL).",
        ),
        "beat-heartbeat": PeriodicSchedule(
            task="config.tasks.record_heartbeat_task",
            every_seconds=30,
            description="Records that beat and a worker are alive (shown by /readyz).",
        ),
        "config-purge-idempotency-keys": PeriodicSchedule(
            task="config.tasks.purge_idempotency_keys_task",
            cron="41 * * * *",
            description="Deletes Idempotency-Key rows older than IDEMPOTENCY_KEY_TTL_HOURS (at least 24 h), hourly.",
        ),
        "agreements-mark-overdue": PeriodicSchedule(
            task="agreements.tasks.mark_overdue_agreements_task",
            cron="*/15 * * * *",
            description="Moves IN_PROGRESS agreements past their repayment end date to OVERDUE.",
        ),
        "agreements-sweep-webhooks": PeriodicSchedule(
            task="agreements.tasks.sweep_webhook_deliveries_task",
            every_seconds=settings.WEBHOOK_SWEEP_EVERY_SECONDS,
            description="Re-enqueues pending webhook deliveries and unprocessed inbound events; sends owed alerts.",
        ),
        "chain-sweep-transactions": PeriodicSchedule(
            task="chain.tasks.sweep_transactions_task",
            every_seconds=15,
            description="Confirms broadcast chain transactions and re-enqueues submissions the broker lost.",
        ),
    }
