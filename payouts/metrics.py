"""Prometheus collectors for payouts, read from PostgreSQL on each scrape (see `config.metrics`).

Batches by status, the batch success ratio and failed batches; holders paid and failed;
distributions by status, the oldest one in progress, and their execution time as a histogram;
assets by sync status. Execution time is a histogram built from the finished distributions'
`execution_duration`, not observed in a worker: each distribution counts exactly once, whichever
worker finished it, and the figures survive restarts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from payouts.models import Asset, BatchPayout, Distribution

EXECUTION_BUCKETS_SECONDS = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


def _counts(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    return dict(rows)


class PayoutCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        yield from self._batches()
        yield from self._distributions()
        sync = _counts(Asset.objects.order_by().values_list("sync_status").annotate(n=Count("id")))
        assets = GaugeMetricFamily("payout_assets", "Assets by sync status.", labels=["sync_status"])
        for status in Asset.SyncStatus.values:
            assets.add_metric([status], float(sync.get(status, 0)))
        yield assets

    def _batches(self) -> Iterable[Metric]:
        Status = BatchPayout.Status
        batches = _counts(BatchPayout.objects.order_by().values_list("status").annotate(n=Count("id")))
        by_status = GaugeMetricFamily("payout_batches", "Batch payouts by status.", labels=["status"])
        for status in Status.values:
            by_status.add_metric([status], float(batches.get(status, 0)))
        completed = batches.get(Status.COMPLETED, 0)
        final = completed + batches.get(Status.FAILED, 0) + batches.get(Status.PARTIALLY_COMPLETED, 0)
        yield by_status
        yield GaugeMetricFamily(
            "payout_batch_success_ratio",
            "Share of finished batches in which every holder was paid (1 when none finished).",
            value=completed / final if final else 1.0,
        )
        yield GaugeMetricFamily(
            "payout_failed_batches", "Batches that ended FAILED.", value=float(batches.get(Status.FAILED, 0))
        )

    def _distributions(self) -> Iterable[Metric]:
        Status = Distribution.Status
        totals = Distribution.objects.aggregate(paid=Sum("paid_count"), failed=Sum("failed_count"))
        yield CounterMetricFamily(
            "payout_holders_paid", "Holder payments confirmed on chain.", value=float(totals["paid"] or 0)
        )
        yield GaugeMetricFamily(
            "payout_holders_failed", "Holder payments currently failed.", value=float(totals["failed"] or 0)
        )
        by_status = _counts(Distribution.objects.order_by().values_list("status").annotate(n=Count("id")))
        distributions = GaugeMetricFamily("payout_distributions", "Distributions by status.", labels=["status"])
        for status in Status.values:
            distributions.add_metric([status], float(by_status.get(status, 0)))
        yield distributions
        running_since = Distribution.objects.filter(status=Status.IN_PROGRESS).aggregate(since=Min("started_at"))[
            "since"
        ]
        yield GaugeMetricFamily(
            "payout_distribution_oldest_in_progress_seconds",
            "Seconds since the oldest IN_PROGRESS distribution started (0 when none runs).",
            value=(timezone.now() - running_since).total_seconds() if running_since else 0.0,
        )
        yield from self._execution_time()

    def _execution_time(self) -> Iterable[Metric]:
        buckets = {
            f"le_{seconds}": Count("id", filter=Q(execution_duration__lte=timedelta(seconds=seconds)))
            for seconds in EXECUTION_BUCKETS_SECONDS
        }
        timed = Distribution.objects.filter(execution_duration__isnull=False).aggregate(
            total=Sum("execution_duration"), count=Count("id"), longest=Max("execution_duration"), **buckets
        )
        histogram = HistogramMetricFamily(
            "payout_distribution_execution_seconds",
            "Execution time of finished distributions (start to COMPLETED or FAILED).",
        )
        histogram.add_metric(
            [],
            [(str(float(s)), float(timed[f"le_{s}"])) for s in EXECUTION_BUCKETS_SECONDS]
            + [("+Inf", float(timed["count"]))],
            sum_value=timed["total"].total_seconds() if timed["total"] else 0.0,
        )
        yield histogram
        yield GaugeMetricFamily(
            "payout_distribution_execution_seconds_max",
            "Longest execution of a finished distribution.",
            value=timed["longest"].total_seconds() if timed["longest"] else 0.0,
        )
