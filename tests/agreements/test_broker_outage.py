"""Reliability: Redis (broker and locks) stops while 500 status changes are made; nothing is lost.

The test runs on a Redis of its own (`dedicated_redis`), without persistence, so every message it
held is gone when it stops: the outbox rows and the sweeper alone must bring every delivery home.
"""

from __future__ import annotations

import logging
import time

from celery.contrib.testing.worker import start_worker
from pytest_django.fixtures import Settings

from agreements.models import Agreement, WebhookDelivery
from agreements.services.agreements import agreement_transition
from agreements.tasks import sweep_webhook_deliveries_task
from config.celery_app import app as celery_app
from tests.agreements.factories import AgreementFactory
from tests.agreements.servers import Receiver
from tests.fixtures.broker import DedicatedRedis
from tests.fixtures.waiting import wait_for

CHANGES = 500
logger = logging.getLogger(__name__)


def test_no_delivery_is_lost_while_redis_is_down(
    transactional_db: None,
    wired: Settings,
    receiver: Receiver,
    dedicated_redis: DedicatedRedis,
) -> None:
    wired.WEBHOOK_SWEEP_AFTER_SECONDS = 1
    agreements = AgreementFactory.create_batch(CHANGES, status=Agreement.Status.DRAFT)
    with start_worker(
        celery_app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=30, loglevel="ERROR"
    ):
        # given Redis is stopped
        dedicated_redis.stop()
        # when 500 status changes are made
        started = time.monotonic()
        for agreement in agreements:
            agreement_transition(agreement_id=agreement.id, target=Agreement.Status.BEFORE_PROGRESS)
        changes_took = time.monotonic() - started
        # then each change and its outbox row were committed, though no message could be sent
        assert WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).count() == CHANGES
        assert receiver.distinct_ids() == set()

        # when Redis comes back (empty) and the periodic sweeper runs
        dedicated_redis.start()
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
    assert swept == {"deliveries": CHANGES, "inbound_events": 0, "owed_alerts": 0}
    assert receiver.distinct_ids() == {str(i) for i in WebhookDelivery.objects.values_list("id", flat=True)}
    assert all(request.verified for request in receiver.requests)
    logger.warning(
        "broker outage: %s changes in %.1fs with Redis down, all delivered %.1fs after restart",
        CHANGES,
        changes_took,
        recovery_took,
    )
