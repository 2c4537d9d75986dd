"""/metrics: Prometheus text with payouts and listener figures, behind an optional bearer token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from payouts.models import BatchPayout, Distribution
from tests.payouts.factories import make_distribution

pytestmark = pytest.mark.django_db


def _sample(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{"))
    return float(line.rsplit(" ", 1)[1])


def test_metrics_report_batches_holders_and_execution_time(client: Client, settings: Settings) -> None:
    # given one finished distribution with two completed batches and one failed batch
    settings.METRICS_TOKEN = ""
    now = timezone.now()
    done = make_distribution(
        status=Distribution.Status.FAILED,
        holders_count=250,
        paid_count=200,
        failed_count=50,
        started_at=now - timedelta(seconds=42),
        finished_at=now,
        execution_duration=timedelta(seconds=42),
    )
    for number, status in enumerate(["COMPLETED", "COMPLETED", "FAILED"], start=1):
        BatchPayout.objects.create(distribution=done, number=number, holders_count=100, status=status)
    # when
    response = client.get("/metrics")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert _sample(text, "payout_holders_paid_total") == 200
    assert _sample(text, "payout_failed_batches") == 1
    assert abs(_sample(text, "payout_batch_success_ratio") - 2 / 3) < 1e-9
    assert _sample(text, "payout_distribution_execution_seconds_max") == 42
    assert 'payout_distributions{status="FAILED"} 1.0' in text
    assert "# TYPE chain_listener_lag_blocks gauge" in text


def test_metrics_token_is_required_when_set(client: Client, settings: Settings) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics").status_code == 200
