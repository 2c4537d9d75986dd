"""/metrics in the Prometheus text format (0.0.4), written by hand from a few cheap aggregates.

Exposed: listener sync lag (blocks behind the head, seconds since the last successful poll),
batch counts by status and the batch success ratio, failed batches, holders paid / failed,
distribution counts by status and execution time (sum, count, max), asset sync status.
With METRICS_TOKEN set, requests need `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count, Max, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from chain.models import EventListener
from payouts.models import Asset, BatchPayout, Distribution

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            self.lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _listener_samples() -> tuple[list[tuple[dict[str, str], float]], list[tuple[dict[str, str], float]]]:
    now = timezone.now()
    lag, age = [], []
    for listener in EventListener.objects.filter(enabled=True).order_by("name"):
        labels = {"listener": listener.name}
        head = getattr(listener, "head_block", None)
        done = getattr(listener, "last_processed_block", None)
        if head is not None and done is not None:
            lag.append((labels, float(max(head - done, 0))))
        success = getattr(listener, "last_success_at", None)
        if success is not None:
            age.append((labels, (now - success).total_seconds()))
    return lag, age


def render_metrics() -> str:
    out = _Writer()
    lag, age = _listener_samples()
    out.metric("chain_listener_lag_blocks", "gauge", "Blocks between the chain head and the listener cursor.", lag)
    out.metric(
        "chain_listener_seconds_since_success", "gauge", "Seconds since the listener last polled successfully.", age
    )

    batches = dict(
        BatchPayout.objects.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    out.metric(
        "payout_batches",
        "gauge",
        "Batch payouts by status.",
        [({"status": s}, float(batches.get(s, 0))) for s in BatchPayout.Status.values],
    )
    completed = batches.get(BatchPayout.Status.COMPLETED, 0)
    final = (
        completed + batches.get(BatchPayout.Status.FAILED, 0) + batches.get(BatchPayout.Status.PARTIALLY_COMPLETED, 0)
    )
    out.metric(
        "payout_batch_success_ratio",
        "gauge",
        "Share of finished batches in which every holder was paid.",
        [({}, completed / final if final else 1.0)],
    )
    out.metric(
        "payout_failed_batches",
        "gauge",
        "Batches that ended FAILED.",
        [({}, float(batches.get(BatchPayout.Status.FAILED, 0)))],
    )

    totals = Distribution.objects.aggregate(paid=Sum("paid_count"), failed=Sum("failed_count"))
    out.metric(
        "payout_holders_paid_total",
        "counter",
        "Holder payments confirmed on chain.",
        [({}, float(totals["paid"] or 0))],
    )
    out.metric(
        "payout_holders_failed", "gauge", "Holder payments currently failed.", [({}, float(totals["failed"] or 0))]
    )

    by_status = dict(
        Distribution.objects.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    out.metric(
        "payout_distributions",
        "gauge",
        "Distributions by status.",
        [({"status": s}, float(by_status.get(s, 0))) for s in Distribution.Status.values],
    )
    timed = Distribution.objects.filter(execution_duration__isnull=False).aggregate(
        total=Sum("execution_duration"), count=Count("id"), longest=Max("execution_duration")
    )
    out.metric(
        "payout_distribution_execution_seconds_sum",
        "counter",
        "Total execution time of finished distributions.",
        [({}, timed["total"].total_seconds() if timed["total"] else 0.0)],
    )
    out.metric(
        "payout_distribution_execution_seconds_count",
        "counter",
        "Finished distributions timed.",
        [({}, float(timed["count"]))],
    )
    out.metric(
        "payout_distribution_execution_seconds_max",
        "gauge",
        "Longest execution of a finished distribution.",
        [({}, timed["longest"].total_seconds() if timed["longest"] else 0.0)],
    )
    sync = dict(
        Asset.objects.order_by().values_list("sync_status").annotate(n=Count("id")).values_list("sync_status", "n")
    )
    out.metric(
        "payout_assets",
        "gauge",
        "Assets by sync status.",
        [({"sync_status": s}, float(sync.get(s, 0))) for s in Asset.SyncStatus.values],
    )
    return out.text()


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE)
