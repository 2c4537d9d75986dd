"""Prometheus collectors for agreements' webhooks, read from PostgreSQL on each scrape (`config.metrics`).

Outbound deliveries by status (the outcome of each delivery's current round), the oldest pending
one, deliveries whose final alert is still owed, and inbound events by status. Each try's outcome
and duration are in-process instruments (`config.instruments`).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agreements.models import InboundBlockchainEvent, WebhookDelivery


class WebhookCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        deliveries = dict(WebhookDelivery.objects.order_by().values_list("status").annotate(n=Count("id")))
        outbound = GaugeMetricFamily("webhook_deliveries", "Outbound webhook deliveries by status.", labels=["status"])
        for status in WebhookDelivery.Status.values:
            outbound.add_metric([status], float(deliveries.get(status, 0)))
        yield outbound
        oldest = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).aggregate(
            since=Min("created_at")
        )["since"]
        yield GaugeMetricFamily(
            "webhook_delivery_oldest_pending_seconds",
            "Age of the oldest PENDING outbound delivery (0 when none).",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )
        inbound_counts = dict(InboundBlockchainEvent.objects.order_by().values_list("status").annotate(n=Count("pk")))
        inbound = GaugeMetricFamily(
            "webhook_inbound_events", "Inbound blockchain webhook events by status.", labels=["status"]
        )
        for status in InboundBlockchainEvent.Status.values:
            inbound.add_metric([status], float(inbound_counts.get(status, 0)))
        yield inbound
