"""Admin pages of the submission lane: read-only list and detail, and the replace action."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from chain.client import ChainClient
from chain.localchain import DeployedContracts
from chain.models import ChainTransaction, SignedVersion
from chain.services import transaction_submit
from tests.chain.factories import batch_intent, enqueue_batch
from tests.fixtures.chain import AnvilNode


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="root-pass-123"))
    return client


@pytest.mark.django_db
def test_transactions_are_listed_read_only_with_their_versions(
    admin_client: Client, chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None
) -> None:
    # given
    row = enqueue_batch(contracts, batch_intent(contracts))
    transaction_submit(transaction_id=str(row.pk))
    row.refresh_from_db()
    # when
    listing = admin_client.get(reverse("admin:chain_chaintransaction_changelist"))
    detail = admin_client.get(reverse("admin:chain_chaintransaction_change", args=[row.pk]))
    # then
    assert listing.status_code == 200
    assert row.tx_hash in listing.text
    assert "BROADCAST" in listing.text
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.text
    assert admin_client.get(reverse("admin:chain_chaintransaction_add")).status_code == 403


@pytest.mark.django_db
def test_the_replace_action_signs_a_new_version_of_a_stuck_transaction(
    admin_client: Client, anvil: AnvilNode, chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None
) -> None:
    # given
    anvil.rpc("evm_setAutomine", False)
    row = enqueue_batch(contracts, batch_intent(contracts))
    transaction_submit(transaction_id=str(row.pk))
    # when
    response = admin_client.post(
        reverse("admin:chain_chaintransaction_changelist"),
        {"action": "replace_stuck", "_selected_action": [str(row.pk)]},
        follow=True,
    )
    # then
    assert response.status_code == 200
    assert SignedVersion.objects.filter(transaction=row).count() == 2
    row.refresh_from_db()
    assert f"current hash {row.tx_hash}" in response.text
    assert row.status == ChainTransaction.Status.BROADCAST


@pytest.mark.django_db
def test_staff_without_permissions_cannot_see_the_transactions(client: Client, operator: User) -> None:
    # given
    client.force_login(operator)
    # when
    response = client.get(reverse("admin:chain_chaintransaction_changelist"))
    # then
    assert response.status_code == 403
