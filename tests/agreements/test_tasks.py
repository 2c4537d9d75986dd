"""Periodic tasks: overdue agreements, their schedules, and the admin's operator actions."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
from celery.worker import WorkController
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from agreements.models import Agreement, WebhookDelivery
from agreements.tasks import mark_overdue_agreements_task
from config.celery_app import declared_schedules
from tests.agreements.factories import AgreementFactory
from tests.agreements.servers import Receiver
from tests.fixtures.waiting import wait_for


def test_periodic_tasks_are_declared() -> None:
    tasks = {schedule.task for schedule in declared_schedules().values()}
    assert {"agreements.tasks.mark_overdue_agreements_task", "agreements.tasks.sweep_webhook_deliveries_task"} <= tasks


@pytest.mark.usefixtures("wired")
def test_overdue_agreements_are_marked_and_announced(celery_worker: WorkController, receiver: Receiver) -> None:
    # given one IN_PROGRESS agreement past its end date, one not yet, one past but already COMPLETED
    today = timezone.localdate()
    late = AgreementFactory.create(
        status=Agreement.Status.IN_PROGRESS,
        repayment_start_date=today - timedelta(days=60),
        repayment_end_date=today - timedelta(days=1),
    )
    current = AgreementFactory.create(
        status=Agreement.Status.IN_PROGRESS, repayment_end_date=today + timedelta(days=30)
    )
    done = AgreementFactory.create(
        status=Agreement.Status.COMPLETED,
        repayment_start_date=dt.date(2020, 1, 1),
        repayment_end_date=dt.date(2020, 12, 31),
    )
    # when beat's task runs through the broker
    mark_overdue_agreements_task.delay()
    # then only the late one moved, and its webhook arrived
    wait_for(lambda: Agreement.objects.get(id=late.id).status == Agreement.Status.OVERDUE)
    assert Agreement.objects.get(id=late.id).status == Agreement.Status.OVERDUE
    assert Agreement.objects.get(id=current.id).status == Agreement.Status.IN_PROGRESS
    assert Agreement.objects.get(id=done.id).status == Agreement.Status.COMPLETED
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "agreement.overdue"
    wait_for(lambda: receiver.distinct_ids() == {str(delivery.id)})
    # and a second run (in this thread) finds nothing to do
    assert mark_overdue_agreements_task() == 0


@pytest.mark.django_db
def test_admin_pages_are_staff_only_and_render(client: Client) -> None:
    # given
    agreement = AgreementFactory.create(status=Agreement.Status.IN_PROGRESS, tx_hash="0x" + "ab" * 32)
    delivery = WebhookDelivery.objects.create(
        agreement=agreement,
        event_type="agreement.in_progress",
        payload={},
        status=WebhookDelivery.Status.FAILED,
        completed_at=timezone.now(),
    )
    pages = [
        f"/admin/agreements/agreement/{agreement.id}/change/",
        f"/admin/agreements/webhookdelivery/{delivery.id}/change/",
        "/admin/agreements/webhookdelivery/",
        "/admin/agreements/webhookdelivery/resend-failed/",
        "/admin/agreements/inboundblockchainevent/",
    ]
    # when anonymous, then redirected to login
    assert all(client.get(page).status_code == 302 for page in pages)
    # when staff
    admin = User.objects.create_superuser("root", "root@example.com", "pw-123456789")
    client.force_login(admin)
    # then every page renders, with the on-chain state and the delivery history
    assert all(client.get(page).status_code == 200 for page in pages)
    assert "0x" + "ab" * 32 in client.get(pages[0]).content.decode()
    # and the resend-failed form queues the failed delivery again
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S").split(" ")
    response = client.post(pages[3], {"since_0": since[0], "since_1": since[1]})
    assert response.status_code == 302
    assert WebhookDelivery.objects.get(id=delivery.id).status == WebhookDelivery.Status.PENDING


@pytest.mark.django_db
def test_admin_actions_go_through_the_services(client: Client) -> None:
    # given a staff user, a failed delivery, a pending one, and a draft agreement with a payment
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-123456789"))
    agreement = AgreementFactory.create(status=Agreement.Status.IN_PROGRESS)
    failed = WebhookDelivery.objects.create(
        agreement=agreement, event_type="e", payload={}, status=WebhookDelivery.Status.FAILED
    )
    pending = WebhookDelivery.objects.create(agreement=agreement, event_type="e", payload={})
    draft = AgreementFactory.create()
    # when the operator resends both deliveries and moves both agreements to COMPLETED
    client.post(
        "/admin/agreements/webhookdelivery/",
        {"action": "resend", "_selected_action": [str(failed.id), str(pending.id)]},
    )
    client.post(
        "/admin/agreements/agreement/",
        {"action": "move_to_completed", "_selected_action": [str(agreement.id), str(draft.id)]},
    )
    # then the failed delivery is pending again, and only the legal move happened (with its webhook)
    assert WebhookDelivery.objects.get(id=failed.id).status == WebhookDelivery.Status.PENDING
    assert Agreement.objects.get(id=agreement.id).status == Agreement.Status.COMPLETED
    assert Agreement.objects.get(id=draft.id).status == Agreement.Status.DRAFT
    assert WebhookDelivery.objects.filter(agreement=agreement, event_type="agreement.completed").count() == 1


@pytest.mark.django_db
def test_the_admin_names_the_delivery_pages_as_the_readme_does(client: Client) -> None:
    # given a staff user
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-123456789"))
    # when they open the admin
    index = client.get("/admin/").content.decode()
    # then the outbox pages are named as the README names them (and as the sweeper's log line says)
    assert "Webhook deliveries" in index
    assert "Inbound blockchain events" in index
