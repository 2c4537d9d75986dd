"""Admin pages of the submission lane: read-only list and detail, the replace, cancel and
run-handler-again actions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from chain.client import ChainClient
from chain.errors import ChainError
from chain.lane import services as lane_services
from chain.localchain import DeployedContracts
from chain.models import ChainTransaction, SignedVersion
from chain.services import (
    register_transaction_handler,
    transaction_confirm,
    transaction_submit,
    unregister_transaction_handler,
)
from tests.chain.factories import batch_intent, enqueue_batch
from tests.fixtures.chain import AnvilNode
from tests.fixtures.users import make_operator


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
def test_read_only_staff_see_the_transactions_but_cannot_act_on_them(client: Client) -> None:
    # given staff who are not approvers (config/roles.py)
    client.force_login(make_operator("viewer", approver=False))
    # when
    response = client.get(reverse("admin:chain_chaintransaction_changelist"))
    # then the list shows, without the replace / cancel / run-handler actions
    assert response.status_code == 200
    assert response.context["action_form"] is None


@pytest.mark.django_db
def test_run_handler_again_applies_a_fixed_handler_and_clears_its_error(
    admin_client: Client, chain_client: ChainClient, contracts: DeployedContracts, clean_redis: None
) -> None:
    # given a confirmed transaction whose handler failed, and the handler since fixed
    calls: list[str] = []
    failing = {"yes"}

    def handler(row: ChainTransaction) -> None:
        if failing:
            raise RuntimeError("payouts database was read-only")
        calls.append(row.intent_key)

    register_transaction_handler("test_admin_rerun", handler)
    try:
        row = enqueue_batch(contracts, batch_intent(contracts), purpose="test_admin_rerun")
        transaction_submit(transaction_id=str(row.pk))
        assert transaction_confirm(transaction_id=str(row.pk)) == ChainTransaction.Status.CONFIRMED
        listing = admin_client.get(reverse("admin:chain_chaintransaction_changelist"), {"handler_failed": "yes"})
        failing.clear()
        # when an operator runs the handler again
        response = admin_client.post(
            reverse("admin:chain_chaintransaction_changelist"),
            {"action": "run_handler_again", "_selected_action": [str(row.pk)]},
            follow=True,
        )
    finally:
        unregister_transaction_handler("test_admin_rerun")
    # then the failure was listed, the handler ran once, and the row says so
    assert "payouts database was read-only" in listing.text
    assert response.status_code == 200
    assert calls == [row.intent_key]
    row.refresh_from_db()
    assert (row.handler_error, row.handler_attempts) == ("", 2)
    assert f"{row.intent_key[1:]}: handler ran (attempt 2)" in response.text  # the admin capitalises it


@pytest.mark.django_db
def test_the_cancel_action_sends_a_zero_value_self_transfer_at_the_stuck_nonce(
    admin_client: Client,
    anvil: AnvilNode,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    block_gas_limit: Callable[[int], None],
    clean_redis: None,
) -> None:
    # given a transaction the node refuses for ever (its gas limit is above the block's)
    row = enqueue_batch(contracts, batch_intent(contracts, list(contracts.holders[:5])))
    lane_services.transaction_prepare(transaction_id=str(row.pk))
    block_gas_limit(300_000)
    with pytest.raises(ChainError):
        transaction_submit(transaction_id=str(row.pk))
    # when an operator cancels it
    response = admin_client.post(
        reverse("admin:chain_chaintransaction_changelist"),
        {"action": "cancel_transaction", "_selected_action": [str(row.pk)]},
        follow=True,
    )
    # then a cancel version is signed and sent at its nonce, and the page says what happens next
    assert response.status_code == 200
    cancel = SignedVersion.objects.get(transaction=row, is_cancel=True)
    row.refresh_from_db()
    assert (row.tx_hash, cancel.nonce, cancel.gas_limit) == (cancel.tx_hash, row.nonce, 21_000)
    assert f"cancel {cancel.tx_hash} sent at nonce {row.nonce}" in response.text
    assert transaction_confirm(transaction_id=str(row.pk)) == ChainTransaction.Status.CANCELLED
