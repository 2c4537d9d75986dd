"""The agreements admin: pages are for staff only and render; operator actions go through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from agreements.models import Agreement, WebhookDelivery
from tests.agreements.factories import AgreementFactory, AgreementPaymentFactory


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


@pytest.mark.django_db
def test_the_admin_shows_and_takes_agreement_amounts_in_currency_units(client: Client) -> None:
    # given a draft agreement of 10,000.00 EUR with a payment of 1,000.00 EUR
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-123456789"))
    payment = AgreementPaymentFactory.create()
    agreement = payment.agreement
    url = f"/admin/agreements/agreement/{agreement.id}/change/"
    # when the lists and the page are read
    listed = client.get("/admin/agreements/agreement/").content.decode()
    payments = client.get("/admin/agreements/agreementpayment/").content.decode()
    page = client.get(url)
    # then in currency units with the currency, never in cents
    assert "10,000.00 EUR" in listed
    assert "1,000.00 EUR" in payments
    assert page.context["adminform"].form["amount"].value() == "10000.00"
    assert "1,000.00 EUR" in page.content.decode()
    # when the amount is changed in units, then with one decimal too many
    form = {
        "creditor_id": agreement.creditor_id,
        "debtor_id": agreement.debtor_id,
        "currency": "EUR",
        "decimals": 2,
        "interest_rate": "4.5",
        "interest_payment_date": "2026-06-01",
        "repayment_start_date": "2026-01-01",
        "repayment_end_date": "2027-01-01",
        "document_url": "https://docs.example.com/agreement.pdf",
    }
    inline_forms = {
        f"{prefix}-{key}": 0
        for prefix in ("payments", "blockchain_logs", "webhook_deliveries")
        for key in ("TOTAL_FORMS", "INITIAL_FORMS")
    }
    changed = client.post(url, {**form, **inline_forms, "amount": "12,500.50"})
    refused = client.post(url, {**form, **inline_forms, "amount": "12.345"})
    # then the first is stored in cents, the second refused on its field
    assert changed.status_code == 302, changed.context["adminform"].form.errors if changed.context else changed
    assert Agreement.objects.get(id=agreement.id).amount == 1_250_050
    assert refused.context["adminform"].form.errors == {"amount": ["at most 2 decimal places: EUR has 2 decimals"]}
