"""In-process Prometheus instruments: counters and histograms observed where the work happens.

They are registered in `INSTRUMENTS`, not in prometheus-client's global registry, and exposed by
`/metrics` (`config.metrics`). With `PROMETHEUS_MULTIPROC_DIR` set before the process starts, every
web and worker process writes its values to files there and `/metrics` sums them. Database
aggregates are not here: they are collectors that read PostgreSQL on each scrape.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import mark_process_dead

INSTRUMENTS = CollectorRegistry(auto_describe=True)

WEBHOOK_DELIVERY_ATTEMPTS = Counter(
    "webhook_delivery_attempts",
    "Outbound webhook tries by outcome (ok, http_<status>, timeout, connection, configuration).",
    ["outcome"],
    registry=INSTRUMENTS,
)
WEBHOOK_DELIVERY_ATTEMPT_SECONDS = Histogram(
    "webhook_delivery_attempt_seconds",
    "Duration of one outbound webhook try.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=INSTRUMENTS,
)
CHAIN_TRANSACTION_SECONDS_TO_FINAL = Histogram(
    "chain_transaction_seconds_to_final",
    "Seconds from a chain transaction's creation to its final state (confirmed, reverted or cancelled).",
    ["purpose"],
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=INSTRUMENTS,
)


def process_exited(pid: int) -> None:
    """Forget a dead process's live gauges (gunicorn `child_exit`, Celery `worker_process_shutdown`).

    Counters and histograms of the dead process stay in the directory and keep counting in the sum,
    as Prometheus expects of a counter.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        mark_process_dead(pid)  # type: ignore[no-untyped-call]
