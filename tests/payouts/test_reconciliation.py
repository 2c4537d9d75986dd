"""Reconciliation against a real completed payout on anvil: the report names every holder on which
the database and the chain disagree, from the command, the admin action and the daily job."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from celery.worker import WorkController
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from payouts import gateway, services
from payouts.models import Distribution, HolderPayment
from tests.agreements.servers import DiscordServer
from tests.fixtures.payouts import ImportedAssetFactory
from tests.payouts.chainkit import wait_finished

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

STRANGER = "0x00000000000000000000000000000000000000c7"  # never paid by the contract


def test_a_completed_payout_reconciles_and_every_difference_made_on_purpose_is_named(
    celery_worker: WorkController,
    chain_settings: Settings,
    imported_asset_factory: ImportedAssetFactory,
    discord_alerts: DiscordServer,
    tmp_path: Path,
) -> None:
    # given a payout paid on chain to four holders
    demo, asset = imported_asset_factory(balances=[1, 2, 3, 4], funding=10**12, salt="reconcile", sync="worker")
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=10_000_000, concept="reconcile"
    )
    done = wait_finished(distribution.pk)
    assert done.status == Distribution.Status.COMPLETED, done.error
    # when it is reconciled untouched
    clean = services.distribution_reconcile(distribution_id=distribution.pk)
    # then every holder matches on isPaid, HolderPaid and the payment-token transfer
    assert clean.counts() == {"matched": 4, "missing_on_chain": 0, "missing_in_database": 0, "amount_differs": 0}
    assert [row.transfer_amount for row in clean.holders] == [row.database_amount for row in clean.holders]
    assert all(row.paid_on_chain for row in clean.holders)

    # given three differences made on purpose in the database
    holders = sorted(gateway.normalize(h) for h in demo.holders)
    failed_in_db, changed_amount = holders[0], holders[1]
    payments = HolderPayment.objects.filter(distribution=distribution)
    payments.filter(holder_address=failed_in_db).update(status=HolderPayment.Status.FAILED)
    payments.filter(holder_address=changed_amount).update(amount=1)
    HolderPayment.objects.create(
        distribution=done,
        batch_number=1,
        holder_address=STRANGER,
        balance=1,
        amount=5,
        status=HolderPayment.Status.SUCCESS,
        updated_at=timezone.now(),
    )
    # when the command reconciles it and writes the CSV
    out, csv_path = io.StringIO(), tmp_path / "report.csv"
    call_command("reconcile_distribution", str(distribution.pk), "--csv", str(csv_path), stdout=out)
    # then the report names each one
    text = out.getvalue()
    assert "matched=2, missing_on_chain=1, missing_in_database=1, amount_differs=1" in text
    assert f"missing_in_database {failed_in_db} database=FAILED" in text
    assert f"amount_differs {changed_amount} database=SUCCESS:1" in text
    assert f"missing_on_chain {STRANGER} database=SUCCESS:5 chain_paid=False" in text
    rows = {row["holder"]: row for row in csv.DictReader(csv_path.open())}
    assert len(rows) == 5
    assert rows[changed_amount]["outcome"] == "amount_differs"
    assert rows[changed_amount]["database_amount"] == "1"
    assert rows[changed_amount]["event_amount"] == rows[changed_amount]["transfer_amount"] != "1"

    # when an operator runs the admin action
    admin = Client()
    admin.force_login(User.objects.create_superuser("boss", password="boss-pass-123"))
    page = admin.post(
        "/admin/payouts/distribution/", {"action": "reconcile", "_selected_action": [str(distribution.pk)]}
    )
    # then the page shows the same differences
    assert page.status_code == 200
    body = page.content.decode()
    for holder in (failed_in_db, changed_amount, STRANGER):
        assert holder in body
    assert "amount_differs" in body

    # when the daily job runs
    differing = services.distributions_reconcile_recent()
    # then it alerts once, naming the distribution
    assert differing == 1
    assert [m["embeds"][0]["title"] for m in discord_alerts.messages] == ["Distribution differs from the chain"]
    assert str(distribution.pk) in discord_alerts.messages[0]["embeds"][0]["description"]
