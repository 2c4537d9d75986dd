"""Assets named by Hedera entity ids: imported by id (API and admin), shown with both forms; malformed
and unknown ids are 400s naming the field, a Mirror Node that is down a 503. Against the fake Mirror
Node over the session's anvil."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from chain.hedera import MAINNET, EntityId
from chain.localchain import DeployedContracts
from chain.models import EventListener
from payouts import gateway, services
from payouts.models import Asset
from tests.fixtures.chain import AnvilNode
from tests.fixtures.mirror_node import FakeMirrorNode
from tests.fixtures.payouts import DemoAssetFactory

pytestmark = [pytest.mark.chain, pytest.mark.django_db]


@pytest.fixture
def hedera_settings(chain_settings: Settings, mirror_node: FakeMirrorNode) -> Settings:
    chain_settings.HEDERA_MIRROR_URL = mirror_node.url
    return chain_settings


def _with_checksum(entity_id: str) -> str:
    shard, realm, num = (int(part) for part in entity_id.split("."))
    return f"{entity_id}-{EntityId(shard, realm, num).checksum(MAINNET)}"


def _import(api_client: APIClient, **body: str) -> Any:
    return api_client.post("/api/v1/assets/import", body, format="json")


def _hts_payment_token(anvil: AnvilNode, contracts: DeployedContracts, address: str) -> None:
    """Put the reference payment token's code (decimals is a constant: 6) at an HTS token's long-zero address."""
    anvil.rpc("anvil_setCode", address, anvil.rpc("eth_getCode", contracts.payment_token, "latest"))


def test_an_asset_imported_by_hedera_ids_is_shown_with_both_forms(
    api_client: APIClient,
    hedera_settings: Settings,
    mirror_node: FakeMirrorNode,
    demo_asset_factory: DemoAssetFactory,
    contracts: DeployedContracts,
) -> None:
    # given a token and its payout contract, which the Mirror Node knows by id
    demo = demo_asset_factory(balances=[3, 4], funding=0, salt="hid")
    token_id, payout_id = mirror_node.contract_id(demo.token), mirror_node.contract_id(demo.payout)
    # when imported by id (the payout contract's written with its checksum)
    response = _import(api_client, token_address=token_id, payout_contract_address=_with_checksum(payout_id))
    # then the asset holds the contracts' EVM addresses, and shows each with its id
    assert response.status_code == 201, response.json()
    expected = {
        "token_address": demo.token,
        "hedera_token_id": token_id,
        "payout_contract_address": demo.payout,
        "hedera_payout_contract_id": payout_id,
        "payment_token_address": contracts.payment_token,
        "hedera_payment_token_id": mirror_node.contract_id(contracts.payment_token),
    }
    assert {key: response.json()[key] for key in expected} == expected
    shown = api_client.get(f"/api/v1/assets/{response.json()['id']}").json()
    assert {key: shown[key] for key in expected} == expected
    listed = api_client.get("/api/v1/assets").json()["items"][0]
    assert {key: listed[key] for key in expected} == expected


def test_evm_addresses_get_their_hedera_ids_from_the_mirror_node(
    api_client: APIClient, hedera_settings: Settings, mirror_node: FakeMirrorNode, demo_asset_factory: DemoAssetFactory
) -> None:
    # given
    demo = demo_asset_factory(balances=[1], funding=0, salt="evm")
    # when imported by EVM address
    response = _import(api_client, token_address=demo.token.lower(), payout_contract_address=demo.payout)
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["token_address"], body["hedera_token_id"]) == (demo.token, mirror_node.contract_id(demo.token))
    assert body["hedera_payout_contract_id"] == mirror_node.contract_id(demo.payout)


def test_a_payment_token_named_by_its_hts_id_is_addressed_by_its_long_zero_form(
    api_client: APIClient,
    hedera_settings: Settings,
    mirror_node: FakeMirrorNode,
    anvil: AnvilNode,
    contracts: DeployedContracts,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given an HTS payment token (its code at its long-zero address) and a token without a payout contract
    usdc = mirror_node.add_token(name="USD Coin", symbol="USDC", decimals=6)
    _hts_payment_token(anvil, contracts, mirror_node.token_address(usdc))
    demo = demo_asset_factory(balances=[1], funding=0, salt="hts")
    # when
    response = _import(api_client, token_address=demo.token, payment_token_address=usdc)
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["payment_token_address"], body["hedera_payment_token_id"]) == (mirror_node.token_address(usdc), usdc)
    assert body["payout_contract_address"] is None
    assert body["hedera_payout_contract_id"] is None
    assert body["payment_token_decimals"] == 6


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("token_address", "0.0.0123", "not a 0x address or a Hedera id"),
        ("token_address", "token", "not a 0x address or a Hedera id"),
        ("payout_contract_address", "0.0.123-abcde", "checksum"),
        ("payout_contract_address", "0x1234", "not a 0x address or a Hedera id"),
    ],
)
def test_a_malformed_id_is_a_400_naming_the_field_and_asks_the_mirror_node_nothing(
    api_client: APIClient,
    hedera_settings: Settings,
    mirror_node: FakeMirrorNode,
    contracts: DeployedContracts,
    field: str,
    value: str,
    message: str,
) -> None:
    # given a valid rest of the request
    body = {"token_address": contracts.equity_token, field: value}
    # when
    response = _import(api_client, **body)
    # then
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert message in response.json()["fields"][field][0]
    assert not [path for path in mirror_node.requests if value in path]
    assert Asset.objects.count() == 0


def test_an_id_the_mirror_node_does_not_know_is_a_400_saying_so(
    api_client: APIClient, hedera_settings: Settings, mirror_node: FakeMirrorNode, contracts: DeployedContracts
) -> None:
    # when
    response = _import(api_client, token_address=contracts.equity_token, payment_token_address="0.0.987654")
    # then
    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {
        "payment_token_address": ["the Mirror Node does not know 0.0.987654: no contract or token has this id"]
    }
    assert Asset.objects.count() == 0


def test_a_mirror_node_that_is_down_is_a_503_and_nothing_is_imported(
    api_client: APIClient, chain_settings: Settings, mirror_node: FakeMirrorNode, contracts: DeployedContracts
) -> None:
    # given a Mirror Node that does not answer, then one that answers 503
    for url, failing in (("http://127.0.0.1:9", None), (mirror_node.url, 503)):
        chain_settings.HEDERA_MIRROR_URL = url
        mirror_node.fail_with = failing
        # when
        response = _import(api_client, token_address="0.0.1001", payout_contract_address=contracts.equity_payout)
        # then
        assert response.status_code == 503, response.json()
        assert response.json()["code"] == "unavailable"
        assert "Mirror Node" in response.json()["detail"]
        assert "127.0.0.1" not in response.json()["detail"]
    assert Asset.objects.count() == 0


def test_without_a_mirror_node_an_id_is_its_long_zero_form_and_addresses_have_no_id(
    api_client: APIClient,
    chain_settings: Settings,
    anvil: AnvilNode,
    contracts: DeployedContracts,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given no Mirror Node, and a payment token at the long-zero address of 0.0.4431
    chain_settings.HEDERA_MIRROR_URL = ""
    payment = EntityId(0, 0, 4431).long_zero_address
    _hts_payment_token(anvil, contracts, payment)
    demo = demo_asset_factory(balances=[1], funding=0, salt="nomirror")
    # when
    response = _import(api_client, token_address=demo.token, payment_token_address="0.0.4431")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["payment_token_address"], body["hedera_payment_token_id"]) == (payment, "0.0.4431")
    assert (body["token_address"], body["hedera_token_id"]) == (demo.token, None)


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="root-pass-123"))
    return client


def test_the_admin_imports_by_hedera_id_and_shows_an_unknown_one_on_its_field(
    admin_client: Client,
    hedera_settings: Settings,
    mirror_node: FakeMirrorNode,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given
    demo = demo_asset_factory(balances=[1], funding=0, salt="adm")
    token_id, payout_id = mirror_node.contract_id(demo.token), mirror_node.contract_id(demo.payout)
    # when an unknown payout contract id is given
    refused = admin_client.post(
        "/admin/payouts/asset/add/", {"token_address": token_id, "payout_contract_address": "0.0.987654"}
    )
    # then the form says so, by its field
    assert refused.status_code == 200
    assert "the Mirror Node does not know 0.0.987654" in refused.context["form"].errors["payout_contract_address"][0]
    # when the right one is given
    imported = admin_client.post(
        "/admin/payouts/asset/add/", {"token_address": token_id, "payout_contract_address": payout_id}
    )
    # then
    assert imported.status_code == 302
    asset = Asset.objects.get()
    assert (asset.hedera_token_id, asset.hedera_payout_contract_id) == (token_id, payout_id)


def test_the_payout_contract_a_sync_deploys_gets_its_hedera_id_and_the_listeners_keep_theirs(
    hedera_settings: Settings, mirror_node: FakeMirrorNode, demo_asset_factory: DemoAssetFactory
) -> None:
    # given an asset imported without a payout contract, its payment token by id
    demo = demo_asset_factory(balances=[2], funding=0, salt="deploy")
    payment_id = mirror_node.contract_id(demo.payment_token)
    asset = services.asset_import(token_address=demo.token, payment_token_address=payment_id)
    assert asset.hedera_payout_contract_id is None
    # when the sync deploys one
    synced = services.asset_sync(asset_id=asset.pk)
    # then it has the id the Mirror Node gives that contract, and each listener has its contract's id
    assert synced.sync_status == Asset.SyncStatus.SYNCED, synced.sync_error
    assert synced.hedera_payout_contract_id == mirror_node.contract_id(synced.payout_contract_address)
    watched = dict(EventListener.objects.values_list("contract_address", "hedera_id"))
    assert watched == {
        demo.token: mirror_node.contract_id(demo.token),
        gateway.checksum(synced.payout_contract_address): synced.hedera_payout_contract_id,
        demo.payment_token: payment_id,
    }
