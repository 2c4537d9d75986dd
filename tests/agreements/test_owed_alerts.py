"""The outbox's final alert is owed from the transaction that fails the row until it is handled.

Crash safety: a real worker process killed between a row's FAILED commit and its Discord alert,
then the periodic sweeper; the alert reaches Discord exactly once, for an outbound delivery and for
an inbound event alike. Then: a sweep racing the worker's own alert leaves it to the worker, an
alert suppressed by the rate limit counts as handled, and a fresh round drops the owed alert."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from django.db import models
from django.utils import timezone
from pytest_django.fixtures import Settings

from agreements import outbox
from agreements.models import Agreement, InboundBlockchainEvent, WebhookDelivery
from agreements.services.inbound import EVENTS, blockchain_event_reprocess
from agreements.services.outbound import DELIVERIES, webhook_delivery_resend
from agreements.tasks import sweep_webhook_deliveries_task
from config.alerts import send_alert
from tests.agreements.conftest import Application
from tests.agreements.factories import AgreementFactory
from tests.agreements.servers import DiscordServer, Receiver, Reply, field_of
from tests.fixtures.crashing import CRASH_EXIT_CODE, run_crashing_worker
from tests.fixtures.waiting import wait_for


def _delivery_the_receiver_refuses() -> UUID:
    agreement = AgreementFactory.create(status=Agreement.Status.COMPLETED)
    delivery = WebhookDelivery.objects.create(
        agreement=agreement,
        event_type="agreement.completed",
        payload={"type": "moneyGuard.updateIOUData", "timestamp": 1, "data": {"agreement_id": str(agreement.id)}},
    )
    assert DELIVERIES.enqueue(delivery.id)
    return delivery.id


def _orphan_event() -> UUID:
    """An event naming an agreement we do not have: every processing try fails."""
    event = InboundBlockchainEvent.objects.create(
        webhook_id="msg_orphan",
        body_sha256="0" * 64,
        type=InboundBlockchainEvent.Type.INIT_DATA,
        agreement_id=uuid.uuid4(),
        tx_hash="0x" + "55" * 32,
        payload={"type": "INIT_DATA", "data": {}},
    )
    assert EVENTS.enqueue(event.id)
    return event.id


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[models.Model]
    failed: str
    row_label: str  # the alert field that names the row
    make: Callable[[], UUID]  # stores a row whose every try fails, and publishes its task

    def __str__(self) -> str:
        return self.name


KINDS = [
    Kind("delivery", WebhookDelivery, WebhookDelivery.Status.FAILED, "Delivery", _delivery_the_receiver_refuses),
    Kind("event", InboundBlockchainEvent, InboundBlockchainEvent.Status.FAILED, "Inbound event", _orphan_event),
]


@pytest.mark.parametrize("seam", ["after_failed", "while_alerting"])
@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_a_worker_killed_before_the_final_alert_leaves_it_owed_and_the_sweeper_sends_it_once(
    kind: Kind,
    seam: str,
    transactional_db: None,
    clean_redis: None,
    wired: Settings,
    receiver: Receiver,
    discord: DiscordServer,
    application: Application,
) -> None:
    # given a row whose every try fails (the receiver answers 500), its task on the broker
    receiver.default = Reply(status=500)
    row_id = kind.make()
    # when a worker makes its tries (1 + 1 retry), commits the row FAILED and dies at the seam
    env = {
        "BLOCKCHAIN_WEBHOOK_URL": wired.BLOCKCHAIN_WEBHOOK_URL,
        "BLOCKCHAIN_APPLICATION_ID": application.id,
        "BLOCKCHAIN_APPLICATION_SECRET_KEY": wired.BLOCKCHAIN_APPLICATION_SECRET_KEY,
        "DISCORD_WEBHOOK_URL": wired.DISCORD_WEBHOOK_URL,
        "WEBHOOK_MAX_RETRIES": "1",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.05",
        "WEBHOOK_TIMEOUT_SECONDS": "1",
    }
    assert run_crashing_worker("tests.agreements.crash_worker", seam, env) == CRASH_EXIT_CODE
    row: Any = kind.model._default_manager.get(id=row_id)
    assert (row.status, row.attempt_count) == (kind.failed, 2)
    assert discord.messages == []  # the worker died before Discord heard of it
    # ... and the periodic sweeper runs (a hold the dead worker had on the alert expires first)

    def sweep() -> list[dict[str, Any]]:
        sweep_webhook_deliveries_task()
        return discord.messages

    wait_for(sweep, timeout=15, interval=0.5, what="the owed alert to reach Discord")
    sweep()  # and once more: it was sent, nothing is left to send
    # then exactly one alert reached Discord, naming the row, and the row no longer owes it
    [alert] = discord.messages
    assert field_of(alert["embeds"][0], kind.row_label) == str(row_id)
    assert kind.model._default_manager.filter(id=row_id, alert_due_at=None).exists()


def _failed_delivery() -> WebhookDelivery:
    """A delivery that just gave up: FAILED, its alert owed (its worker has not sent it yet)."""
    now = timezone.now()
    return WebhookDelivery.objects.create(
        agreement=AgreementFactory.create(status=Agreement.Status.COMPLETED),
        event_type="agreement.completed",
        payload={},
        status=WebhookDelivery.Status.FAILED,
        attempt_count=4,
        last_error="HTTP 500",
        completed_at=now,
        alert_due_at=now,
    )


def _owing(model: type[models.Model]) -> set[UUID]:
    return set(model._default_manager.filter(alert_due_at__isnull=False).values_list("id", flat=True))


NOTHING_SWEPT = {"deliveries": 0, "inbound_events": 0, "owed_alerts": 0}


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_redis", "wired")
def test_a_sweep_while_the_worker_sends_the_alert_leaves_it_to_the_worker(
    discord: DiscordServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a delivery that just gave up
    delivery = _failed_delivery()
    # when its worker sends the alert, and at that very moment (claimed, not yet posted) the sweeper runs
    sends: list[dict[str, Any]] = []
    sweeps: list[object] = []

    def send_while_the_sweeper_runs(**alert: Any) -> bool:
        sends.append(alert)
        sweeps.append(sweep_webhook_deliveries_task())
        return send_alert(**alert)

    monkeypatch.setattr(outbox, "send_alert", send_while_the_sweeper_runs)
    assert DELIVERIES.alert_failed(delivery.id)
    # then the sweeper found nothing to send: the alert was sent once, and is owed no more
    assert (len(sends), sweeps) == (1, [NOTHING_SWEPT])
    assert len(discord.accepted) == 1
    assert _owing(WebhookDelivery) == set()


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_redis", "wired")
def test_an_alert_the_rate_limit_suppresses_counts_as_handled(discord: DiscordServer) -> None:
    # given two deliveries that gave up for the same cause, whose worker died before alerting
    first, _ = _failed_delivery(), _failed_delivery()
    # when the sweeper runs
    swept = sweep_webhook_deliveries_task()
    # then the first one's alert was sent, the other suppressed by the rate limit, and neither is owed
    assert swept == {**NOTHING_SWEPT, "owed_alerts": 1}
    [alert] = discord.messages
    assert field_of(alert["embeds"][0], "Delivery") == str(first.id)
    assert _owing(WebhookDelivery) == set()
    # and the next sweep sends nothing
    assert sweep_webhook_deliveries_task() == NOTHING_SWEPT
    assert len(discord.messages) == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_redis", "wired")
def test_a_fresh_round_drops_the_alert_owed_by_the_round_that_gave_up(discord: DiscordServer) -> None:
    # given a delivery and an inbound event that gave up, their alerts still owed
    delivery = _failed_delivery()
    event = InboundBlockchainEvent.objects.create(
        webhook_id="msg_failed",
        body_sha256="0" * 64,
        type=InboundBlockchainEvent.Type.INIT_DATA,
        agreement_id=delivery.agreement_id,
        tx_hash="0x" + "66" * 32,
        payload={"type": "INIT_DATA", "data": {}},
        status=InboundBlockchainEvent.Status.FAILED,
        alert_due_at=timezone.now(),
    )
    # when an operator resends the delivery and reprocesses the event before the sweeper ran
    webhook_delivery_resend(delivery_id=delivery.id)
    blockchain_event_reprocess(event_id=event.id)
    # then neither owes an alert, and the sweeper sends none
    assert (_owing(WebhookDelivery), _owing(InboundBlockchainEvent)) == (set(), set())
    assert sweep_webhook_deliveries_task() == NOTHING_SWEPT
    assert discord.messages == []
