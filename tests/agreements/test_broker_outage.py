"""Reliability: Redis (broker and locks) stops while 500 status changes are made; nothing is lost.

A dedicated Redis on a fixed port is started for this test, and the Celery app, `REDIS_URL` and the
lock client are pointed at it, then restored. It runs without persistence, so every message it
held is gone when it stops: the outbox rows and the sweeper alone must bring every delivery home.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from pytest_django.fixtures import Settings

from agreements.models import Agreement, WebhookDelivery
from agreements.services.agreements import agreement_transition
from agreements.tasks import sweep_webhook_deliveries_task
from config.celery_app import app as celery_app
from config.localservices import LocalService, free_port, start_redis
from tests.agreements.factories import AgreementFactory
from tests.agreements.servers import Receiver
from tests.fixtures.waiting import wait_for

CHANGES = 500
logger = logging.getLogger(__name__)


def _point_celery_at(url: str) -> None:
    """Switch the app's broker and drop its cached connection and producer pools."""
    app: Any = celery_app  # private attributes, not in the type stubs
    app.conf.broker_url = url
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def dedicated_redis(settings: Settings, tmp_path: Path) -> Iterator[tuple[int, Path, list[LocalService]]]:
    port, data_dir = free_port(), tmp_path / "redis"
    running = [start_redis(port=port, data_dir=data_dir)]
    previous_broker = celery_app.conf.broker_url
    settings.REDIS_URL = running[0].url  # config.locks follows REDIS_URL
    _point_celery_at(running[0].url)
    try:
        yield port, data_dir, running
    finally:
        _point_celery_at(previous_broker)
        for service in running:
            service.stop()


def test_no_delivery_is_lost_while_redis_is_down(
    transactional_db: None,
    wired: Settings,
    receiver: Receiver,
    dedicated_redis: tuple[int, Path, list[LocalService]],
) -> None:
    port, data_dir, running = dedicated_redis
    wired.WEBHOOK_SWEEP_AFTER_SECONDS = 1
    agreements = AgreementFactory.create_batch(CHANGES, status=Agreement.Status.DRAFT)
    with start_worker(
        celery_app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=30, loglevel="ERROR"
    ):
        # given Redis is stopped
        running.pop().stop()
        # when 500 status changes are made
        started = time.monotonic()
        for agreement in agreements:
            agreement_transition(agreement_id=agreement.id, target=Agreement.Status.BEFORE_PROGRESS)
        changes_took = time.monotonic() - started
        # then each change and its outbox row were committed, though no message could be sent
        assert WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).count() == CHANGES
        assert receiver.distinct_ids() == set()

        # when Redis comes back (empty) and the periodic sweeper runs
        running.append(start_redis(port=port, data_dir=data_dir))
        time.sleep(1.1)  # the deliveries are now overdue by WEBHOOK_SWEEP_AFTER_SECONDS
        started = time.monotonic()
        swept = sweep_webhook_deliveries_task()
        # then every delivery arrives, each once as far as the receiver can tell
        wait_for(lambda: len(receiver.distinct_ids()) == CHANGES, timeout=180, interval=0.5)
        wait_for(
            lambda: WebhookDelivery.objects.filter(status=WebhookDelivery.Status.SUCCESS).count() == CHANGES,
            timeout=60,
        )
        recovery_took = time.monotonic() - started
    assert swept == {"deliveries": CHANGES, "inbound_events": 0}
    assert receiver.distinct_ids() == {str(i) for i in WebhookDelivery.objects.values_list("id", flat=True)}
    assert all(request.verified for request in receiver.requests)
    logger.warning(
        "broker outage: %s changes in %.1fs with Redis down, all delivered %.1fs after restart",
        CHANGES,
        changes_took,
        recovery_took,
    )
