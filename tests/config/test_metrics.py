"""/metrics from real PostgreSQL rows: listeners, lanes, webhooks and the execution-time histogram;
multiprocess mode; and the shipped Prometheus alerts and Grafana dashboard use only exported metrics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from pytest_django.fixtures import Settings

from agreements.models import WebhookDelivery
from chain.lane.models import ChainTransaction
from chain.listener.models import ChainEvent, EventListener
from payouts.models import Distribution
from tests.agreements.factories import AgreementFactory
from tests.payouts.factories import make_distribution

pytestmark = pytest.mark.django_db

ROOT = Path(django_settings.BASE_DIR)
SENDER = "0x00000000000000000000000000000000000000A1"
# PromQL words that are not metric names
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "sum", "min", "max", "avg", "count", "rate", "increase", "delta", "deriv", "histogram_quantile",
    "max_over_time", "min_over_time", "avg_over_time", "topk", "bottomk", "abs", "clamp_min", "time",
}  # fmt: skip


def _scrape(client: Client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _exported_names(text: str) -> set[str]:
    """Every series name a query may use: each family's samples, or the names its type gives it."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "summary": ["_sum", "_count"]}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, []))
        names.update(sample.name for sample in family.samples)
    return names


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?|e\d+|Inf|NaN", w)}


def _rows_for_every_metric() -> None:
    now = timezone.now()
    listener = EventListener.objects.create(
        name="payout-contract",
        contract_address="0x00000000000000000000000000000000000000B2",
        abi_name="PayoutContract",
        head_block=1_000,
        last_processed_block=940,
        last_success_at=now - timedelta(seconds=90),
    )
    ChainEvent.objects.create(
        listener=listener,
        tx_hash="0x" + "ab" * 32,
        log_index=0,
        contract_address=listener.contract_address,
        block_number=900,
        event_name="HolderPaid",
        status=ChainEvent.Status.FAILED,
        error="boom",
    )
    for nonce, age in ((7, 1_200), (8, 30)):
        row = ChainTransaction.objects.create(
            intent_key=f"metrics-{nonce}",
            purpose="payout_batch",
            chain_id=31337,
            sender=SENDER,
            to=listener.contract_address,
            data="0x",
            nonce=nonce,
            status=ChainTransaction.Status.BROADCAST,
            broadcast_at=now - timedelta(seconds=age),
        )
        ChainTransaction.objects.filter(pk=row.pk).update(created_at=now - timedelta(seconds=age))
    agreement = AgreementFactory.create()
    for status in (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED, WebhookDelivery.Status.SUCCESS):
        WebhookDelivery.objects.create(agreement=agreement, event_type="AGREEMENT_CREATED", payload={}, status=status)
    for seconds in (5, 42, 4_000):
        make_distribution(
            status=Distribution.Status.COMPLETED,
            started_at=now - timedelta(seconds=seconds),
            finished_at=now,
            execution_duration=timedelta(seconds=seconds),
        )
    make_distribution(status=Distribution.Status.IN_PROGRESS, started_at=now - timedelta(minutes=30))


def test_metrics_show_listener_lag_lane_depth_oldest_pending_and_webhook_outcomes(
    client: Client, settings: Settings
) -> None:
    # given a listener 60 blocks behind with a failed event, a sender with two broadcast transactions
    # (the oldest 20 minutes old), three webhook deliveries and four distributions
    settings.METRICS_TOKEN = ""
    _rows_for_every_metric()
    # when
    samples = _samples(_scrape(client))
    # then
    listener = (("listener", "payout-contract"),)
    assert samples[("chain_listener_lag_blocks", listener)] == 60
    assert 90 <= samples[("chain_listener_seconds_since_success", listener)] < 120
    assert samples[("chain_listener_failed_events", listener)] == 1
    lane = (("chain_id", "31337"), ("sender", SENDER))
    assert samples[("chain_lane_depth", lane)] == 2
    assert 1_200 <= samples[("chain_lane_oldest_pending_seconds", lane)] < 1_260
    assert samples[("chain_transactions_stuck", ())] == 1  # broadcast 20 min ago, no receipt
    assert samples[("chain_lanes_halted", ())] == 1  # its nonce waited past CHAIN_LANE_HALTED_AFTER_SECONDS
    for status in ("PENDING", "FAILED", "SUCCESS"):
        assert samples[("webhook_deliveries", (("status", status),))] == 1
    assert samples[("payout_distribution_execution_seconds_count", ())] == 3
    assert samples[("payout_distribution_execution_seconds_sum", ())] == 4_047
    assert samples[("payout_distribution_execution_seconds_bucket", (("le", "10.0"),))] == 1
    assert samples[("payout_distribution_execution_seconds_bucket", (("le", "60.0"),))] == 2
    assert samples[("payout_distribution_execution_seconds_bucket", (("le", "3600.0"),))] == 2
    assert samples[("payout_distribution_execution_seconds_bucket", (("le", "+Inf"),))] == 3
    assert 1_800 <= samples[("payout_distribution_oldest_in_progress_seconds", ())] < 1_860


def test_with_a_multiprocess_directory_the_instruments_of_every_process_are_summed(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    # given two worker processes that each recorded a webhook try into the shared directory
    settings.METRICS_TOKEN = ""
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    code = (
        "from config.instruments import WEBHOOK_DELIVERY_ATTEMPTS, WEBHOOK_DELIVERY_ATTEMPT_SECONDS\n"
        "WEBHOOK_DELIVERY_ATTEMPTS.labels('http_503').inc()\n"
        "WEBHOOK_DELIVERY_ATTEMPT_SECONDS.observe(0.2)\n"
    )
    for _ in range(2):
        subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", code], check=True, cwd=ROOT, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
        )
    # when this (third) process answers the scrape
    samples = _samples(_scrape(client))
    # then it shows both processes' tries, and the database aggregates too
    assert samples[("webhook_delivery_attempts_total", (("outcome", "http_503"),))] == 2
    assert samples[("webhook_delivery_attempt_seconds_count", ())] == 2
    assert ("payout_batch_success_ratio", ()) in samples


def test_every_metric_the_alerts_and_the_dashboard_use_is_exported(client: Client, settings: Settings) -> None:
    # given real rows behind every metric
    settings.METRICS_TOKEN = ""
    _rows_for_every_metric()
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    dashboard = json.loads((ROOT / "deploy/grafana/dashboard.json").read_text())
    alert_exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    panel_exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    # when
    exported = _exported_names(_scrape(client))
    # then
    used = {name for expr in alert_exprs + panel_exprs for name in _metric_names(expr)}
    assert len(alert_exprs) >= 10
    assert len(used) >= 20
    assert used - exported == set()
    alert_metrics = {name for expr in alert_exprs for name in _metric_names(expr)}
    # the README's "alert on" lists: listener success, RPC lag, failed events, failed batches,
    # success ratio, distributions stuck IN_PROGRESS
    assert {
        "chain_listener_seconds_since_success",
        "chain_listener_lag_blocks",
        "chain_listener_failed_events",
        "payout_failed_batches",
        "payout_batch_success_ratio",
        "payout_distribution_oldest_in_progress_seconds",
    } <= alert_metrics
