"""Periodic tasks: overdue agreements and their schedules."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
from celery.worker import WorkController
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
