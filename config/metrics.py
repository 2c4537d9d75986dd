"""/metrics: Prometheus exposition built with prometheus-client, behind an optional bearer token.

Two kinds of metric, kept apart on purpose:
- **Database aggregates** (listener lag, batches, distributions and their execution-time histogram,
  chain lanes, webhook deliveries) are custom collectors (`chain.metrics`, `payouts.metrics`,
  `agreements.metrics`) that run a few cheap queries on each scrape. They read the truth in
  PostgreSQL, so they are the same whichever process answers and survive restarts; they never go
  through the multiprocess directory.
- **In-process instruments** (counters and histograms observed where work happens, in whichever web
  or worker process runs it) live in `INSTRUMENTS`. With `PROMETHEUS_MULTIPROC_DIR` set, every
  process writes them to files in that directory and a scrape sums them with
  `MultiProcessCollector`; unset, a scrape shows this process's own values.

A fresh registry is assembled per scrape, so nothing here is a singleton tests must reset.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from agreements.metrics import WebhookCollector
from chain.metrics import LaneCollector, ListenerCollector
from config.instruments import INSTRUMENTS
from payouts.metrics import PayoutCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def database_collectors() -> list[Collector]:
    """Every collector that reads PostgreSQL, in exposition order."""
    return [ListenerCollector(), LaneCollector(), PayoutCollector(), WebhookCollector()]


class _Instruments(Collector):
    """This process's own instruments (used when there is no multiprocess directory)."""

    def collect(self) -> Iterable[Metric]:
        return INSTRUMENTS.collect()


def metrics_registry(*, multiprocess_dir: str | None = None) -> CollectorRegistry:
    """A registry with the database collectors and the instruments (summed over processes if a dir is given)."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in database_collectors():
        registry.register(collector)
    if multiprocess_dir:
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Instruments())
    return registry


def render_metrics() -> bytes:
    return generate_latest(metrics_registry(multiprocess_dir=settings.PROMETHEUS_MULTIPROC_DIR or None))


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE)


def metric_names(registry: CollectorRegistry) -> Iterator[str]:
    """Every sample name a registry exposes (`..._bucket`, `..._sum` included): for tests and checks."""
    for family in registry.collect():
        for sample in family.samples:
            yield sample.name
