"""Admin pages: listeners with their cursor and lag, events filtered by status, operator actions."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from chain.events import DecodedEvent
from chain.models import ChainEvent, EventListener
from tests.chain.listener.factories import ChainEventFactory, EventListenerFactory

pytestmark = pytest.mark.django_db

Register = Callable[[str, str, Callable[[DecodedEvent], None]], None]  # (ABI, event name, processor)


def test_listener_list_shows_cursor_and_sync_lag(admin_client: Client) -> None:
    # given an RPC listener 12 blocks behind the head it saw, and a Mirror Node listener
    EventListenerFactory.create(name="payout-rpc", last_processed_block=88, head_block=100)
    EventListenerFactory.create(
        name="token-mirror", source="MIRROR_NODE", last_processed_timestamp="1700000000.000000001",
        last_processed_log_index=3,
    )  # fmt: skip
    # when
    page = admin_client.get(reverse("admin:chain_eventlistener_changelist")).content.decode()
    # then
    assert "block 88" in page
    assert "12 blocks" in page
    assert "1700000000.000000001 #3" in page
    lag = int(re.search(r">(\d+) s<", page).group(1))  # type: ignore[union-attr]
    assert abs(lag - (int(time.time()) - 1_700_000_000)) < 60


def test_event_list_filters_by_status_and_event_name(admin_client: Client) -> None:
    # given
    failed = ChainEventFactory.create(status="FAILED")
    ChainEventFactory.create(status="PROCESSED", error="")
    # when
    response = admin_client.get(
        reverse("admin:chain_chainevent_changelist"), {"status__exact": "FAILED", "event_name": "Snapshot"}
    )
    # then
    assert response.status_code == 200
    assert list(response.context["cl"].queryset) == [failed]


def test_reprocess_action_runs_the_processor_of_failed_events_once(admin_client: Client, processors: Register) -> None:
    # given a failed event whose processor now works, and an already processed one
    def record(event: DecodedEvent) -> None:
        Group.objects.create(name=f"snapshot-{event.args['id']}")

    processors("AssetToken", "Snapshot", record)
    failed = ChainEventFactory.create(snapshot_id=7)
    done = ChainEventFactory.create(snapshot_id=8, status="PROCESSED", error="")
    # when
    response = admin_client.post(
        reverse("admin:chain_chainevent_changelist"),
        {"action": "reprocess", "_selected_action": [failed.pk, done.pk]},
        follow=True,
    )
    # then only the failed one ran again
    assert response.status_code == 200
    failed.refresh_from_db()
    assert (failed.status, failed.error, failed.attempts) == ("PROCESSED", "", 2)
    assert list(Group.objects.filter(name__startswith="snapshot-").values_list("name", flat=True)) == ["snapshot-7"]
    assert "Reprocessed: 1 PROCESSED." in response.content.decode()


def test_listener_actions_disable_enable_and_reset_the_cursor(admin_client: Client) -> None:
    # given
    listener = EventListenerFactory.create(last_processed_block=500, start_block=42)
    url = reverse("admin:chain_eventlistener_changelist")
    # when / then
    admin_client.post(url, {"action": "disable", "_selected_action": [listener.pk]})
    assert EventListener.objects.get(pk=listener.pk).enabled is False
    admin_client.post(url, {"action": "enable", "_selected_action": [listener.pk]})
    assert EventListener.objects.get(pk=listener.pk).enabled is True
    admin_client.post(url, {"action": "reset_cursor", "_selected_action": [listener.pk]})
    assert EventListener.objects.get(pk=listener.pk).last_processed_block is None


def test_events_are_read_only_and_pages_are_staff_only(admin_client: Client, client: Client) -> None:
    # given
    event = ChainEventFactory.create()
    # then operators can look but not change
    assert admin_client.get(reverse("admin:chain_chainevent_change", args=[event.pk])).status_code == 200
    assert admin_client.get(reverse("admin:chain_chainevent_add")).status_code == 403
    assert ChainEvent.objects.filter(pk=event.pk).exists()
    # and anonymous users are sent to the login page
    response = client.get(reverse("admin:chain_eventlistener_changelist"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
