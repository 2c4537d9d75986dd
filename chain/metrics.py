"""Prometheus collectors for the chain app, read from PostgreSQL on each scrape (see `config.metrics`).

Listeners: lag (blocks for RPC, seconds for the Mirror Node), seconds since the last successful
poll, failed events. Lane: transactions by status, depth and oldest unfinished transaction per
sender, transactions stuck without a receipt, halted lanes.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chain.lane.models import ChainTransaction
from chain.listener.models import ChainEvent, EventListener
from chain.listener.types import MirrorPosition
from chain.selectors import halted_lanes, stuck_transactions, transaction_status_counts

UNFINISHED = (ChainTransaction.Status.PENDING, ChainTransaction.Status.SIGNED, ChainTransaction.Status.BROADCAST)


class ListenerCollector(Collector):
    """One sample per enabled listener (label `listener`, its unique name)."""

    def collect(self) -> Iterable[Metric]:
        now = timezone.now()
        lag_blocks = GaugeMetricFamily(
            "chain_listener_lag_blocks",
            "RPC listeners: blocks between the head seen at the last poll and the cursor (confirmations included).",
            labels=["listener"],
        )
        lag_seconds = GaugeMetricFamily(
            "chain_listener_lag_seconds",
            "Mirror Node listeners: seconds since the consensus timestamp of the last stored log.",
            labels=["listener"],
        )
        since_success = GaugeMetricFamily(
            "chain_listener_seconds_since_success",
            "Seconds since the listener last polled successfully (since its creation if it never did).",
            labels=["listener"],
        )
        failed_events = GaugeMetricFamily(
            "chain_listener_failed_events",
            "Events whose processor failed and that wait to be reprocessed.",
            labels=["listener"],
        )
        failed = dict(  # served by the (status, event_name) index: failed events are few
            ChainEvent.objects.filter(status=ChainEvent.Status.FAILED)
            .values_list("listener_id")
            .annotate(n=Count("pk"))
            .values_list("listener_id", "n")
            .order_by()
        )
        for listener in EventListener.objects.filter(enabled=True).order_by("name"):
            labels = [listener.name]
            if listener.source == EventListener.Source.RPC:
                if listener.head_block is not None:
                    done = (
                        listener.last_processed_block
                        if listener.last_processed_block is not None
                        else listener.start_block - 1
                    )
                    lag_blocks.add_metric(labels, float(max(0, listener.head_block - done)))
            elif listener.last_processed_timestamp is not None:
                stored_at = MirrorPosition.parse_timestamp(listener.last_processed_timestamp) / 10**9
                lag_seconds.add_metric(labels, max(0.0, now.timestamp() - stored_at))
            since = listener.last_success_at or listener.created_at
            since_success.add_metric(labels, max(0.0, (now - since).total_seconds()))
            failed_events.add_metric(labels, float(failed.get(listener.pk, 0)))
        return [lag_blocks, lag_seconds, since_success, failed_events]


class LaneCollector(Collector):
    """The submission lane: what waits, for how long, and whether a sender is halted."""

    def collect(self) -> Iterable[Metric]:
        now = timezone.now()
        by_status = GaugeMetricFamily("chain_transactions", "Chain transactions by status.", labels=["status"])
        for status, count in transaction_status_counts().items():
            by_status.add_metric([status], float(count))
        depth = GaugeMetricFamily(
            "chain_lane_depth",
            "Unfinished (pending, signed or broadcast) chain transactions per sender.",
            labels=["chain_id", "sender"],
        )
        oldest = GaugeMetricFamily(
            "chain_lane_oldest_pending_seconds",
            "Age of the sender's oldest unfinished chain transaction.",
            labels=["chain_id", "sender"],
        )
        lanes = (
            ChainTransaction.objects.filter(status__in=UNFINISHED)
            .values("chain_id", "sender")
            .annotate(waiting=Count("pk"), since=Min("created_at"))
            .order_by("chain_id", "sender")
        )
        for lane in lanes:
            labels = [str(lane["chain_id"] or ""), lane["sender"] or "unassigned"]
            depth.add_metric(labels, float(lane["waiting"]))
            oldest.add_metric(labels, max(0.0, (now - lane["since"]).total_seconds()))
        stuck = GaugeMetricFamily(
            "chain_transactions_stuck",
            "Broadcast more than 5 minutes ago and still without a receipt (candidates to replace).",
            value=float(stuck_transactions().count()),
        )
        halted = GaugeMetricFamily(
            "chain_lanes_halted",
            "Senders whose lowest unfinished nonce has had no receipt for CHAIN_LANE_HALTED_AFTER_SECONDS.",
            value=float(
                len(halted_lanes(older_than=datetime.timedelta(seconds=settings.CHAIN_LANE_HALTED_AFTER_SECONDS)))
            ),
        )
        return [by_status, depth, oldest, stuck, halted]
