"""Crash safety of the outbox's final alert: a real worker process killed between a row's FAILED
commit and its Discord alert, then the periodic sweeper. The alert reaches Discord exactly once,
for an outbound delivery and for an inbound event alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from django.db import models
from pytest_django.fixtures import Settings

from agreements.models import Agreement, InboundBlockchainEvent, WebhookDelivery
from agreements.services.inbound import EVENTS
from agreements.services.outbound import DELIVERIES
from agreements.tasks import sweep_webhook_deliveries_task
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


@pytest.mark.parametrize("seam", ["after_failed"])
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
    # ... and the periodic sweeper runs

    def sweep() -> list[dict[str, Any]]:
        sweep_webhook_deliveries_task()
        return discord.messages

    wait_for(sweep, timeout=15, interval=0.5, what="the owed alert to reach Discord")
    sweep()  # and once more: it was sent, nothing is left to send
    # then exactly one alert reached Discord, naming the row, and the row no longer owes it
    [alert] = discord.messages
    assert field_of(alert["embeds"][0], kind.row_label) == str(row_id)
    assert kind.model._default_manager.filter(id=row_id, alert_due_at=None).exists()
