"""Listeners on contracts named by Hedera id: in code (`listener_ensure`) and in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

from chain.hedera import MAINNET, EntityId
from chain.listener import listener_ensure
from chain.localchain import DeployedContracts
from chain.models import EventListener
from config.errors import InvalidInput, Unavailable
from tests.fixtures.mirror_node import FakeMirrorNode

pytestmark = [pytest.mark.chain, pytest.mark.django_db]


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="root-pass-123"))
    return client


def _listener_form(contract_address: str) -> dict[str, str]:
    return {
        "name": "payout-by-id",
        "contract_address": contract_address,
        "abi_name": "PayoutContract",
        "source": "MIRROR_NODE",
        "enabled": "on",
        "confirmations": "0",
        "max_block_range": "2000",
        "start_block": "0",
        "start_timestamp": "0",
        "events_stored": "0",
    }


def test_a_listener_on_a_hedera_id_watches_the_contracts_evm_address_and_keeps_its_id(
    listener_settings: Settings, mirror_node: FakeMirrorNode, contracts: DeployedContracts
) -> None:
    # given
    payout_id = mirror_node.contract_id(contracts.equity_payout)
    # when
    listener = listener_ensure(
        name="payout", contract_address=payout_id, abi_name="PayoutContract", source="MIRROR_NODE"
    )
    # then
    assert (listener.contract_address, listener.hedera_id) == (contracts.equity_payout, payout_id)
    # and asking again by address is the same listener, which keeps its id
    again = listener_ensure(
        name="payout", contract_address=contracts.equity_payout, abi_name="PayoutContract", source="MIRROR_NODE"
    )
    assert (again.pk, again.hedera_id) == (listener.pk, payout_id)


def test_a_listener_created_by_address_gets_the_id_its_caller_knows(contracts: DeployedContracts) -> None:
    # given one created without an id
    first = listener_ensure(name="token", contract_address=contracts.equity_token, abi_name="AssetToken")
    assert first.hedera_id is None
    # when ensured again by a caller that knows the id
    listener_ensure(name="token", contract_address=contracts.equity_token, abi_name="AssetToken", hedera_id="0.0.1234")
    # then
    assert EventListener.objects.get(pk=first.pk).hedera_id == "0.0.1234"


def test_an_unknown_id_or_a_mirror_node_down_creates_no_listener(
    listener_settings: Settings, mirror_node: FakeMirrorNode
) -> None:
    with pytest.raises(InvalidInput, match="does not know 0.0.987654") as refused:
        listener_ensure(name="x", contract_address="0.0.987654", abi_name="AssetToken")
    assert refused.value.field == "contract_address"
    mirror_node.fail_with = 503
    with pytest.raises(Unavailable):
        listener_ensure(name="x", contract_address="0.0.1001", abi_name="AssetToken")
    assert EventListener.objects.count() == 0


def test_the_admin_adds_a_listener_by_hedera_id_and_refuses_an_unknown_one_on_its_field(
    admin_client: Client, listener_settings: Settings, mirror_node: FakeMirrorNode, contracts: DeployedContracts
) -> None:
    # given
    payout_id = mirror_node.contract_id(contracts.equity_payout)
    # when an unknown id is given
    refused = admin_client.post("/admin/chain/eventlistener/add/", _listener_form("0.0.987654"))
    # then the form says so, by its field
    assert refused.status_code == 200
    assert "does not know 0.0.987654" in refused.context["adminform"].form.errors["contract_address"][0]
    # when its id (with a checksum) is given
    num = int(payout_id.rsplit(".", 1)[1])
    added = admin_client.post(
        "/admin/chain/eventlistener/add/", _listener_form(f"{payout_id}-{EntityId(0, 0, num).checksum(MAINNET)}")
    )
    # then the listener watches the contract's EVM address and shows its id
    assert added.status_code == 302, added.context["adminform"].form.errors if added.context else added
    listener = EventListener.objects.get()
    assert (listener.contract_address, listener.hedera_id) == (contracts.equity_payout, payout_id)
    assert payout_id.encode() in admin_client.get("/admin/chain/eventlistener/").content
