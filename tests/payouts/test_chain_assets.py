"""Importing and syncing assets against a real anvil chain, with a real Celery worker."""

from __future__ import annotations

import uuid

import pytest
from celery.worker import WorkController
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from chain.abi import encode_call
from chain.client import ChainClient
from chain.localchain import DeployedContracts
from chain.models import EventListener
from config.errors import Conflict, InvalidInput
from payouts import gateway, services
from payouts.models import Asset, AssetHolder
from payouts.services import assets
from tests.fixtures.chain import AnvilNode
from tests.fixtures.payouts import DemoAssetFactory
from tests.fixtures.waiting import wait_for
from tests.payouts.chainkit import DemoAsset
from tests.payouts.factories import make_asset

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def _synced(asset_id: uuid.UUID) -> Asset | None:
    asset = Asset.objects.get(pk=asset_id)
    return asset if asset.sync_status != Asset.SyncStatus.SYNCING else None


def _asset_of(demo: DemoAsset) -> Asset:
    """The asset row of a deployed token, as an import leaves it (the sync itself is the test's)."""
    return make_asset(
        token_address=gateway.normalize(demo.token),
        payout_contract_address=gateway.normalize(demo.payout),
        payment_token_address=gateway.normalize(demo.payment_token),
        sync_status=Asset.SyncStatus.SYNCING,
    )


def test_import_attaches_the_payout_contract_and_loads_every_holder(
    celery_worker: WorkController, demo_asset_factory: DemoAssetFactory, contracts: DeployedContracts
) -> None:
    # given a token with 23 holders and its payout contract
    demo = demo_asset_factory(balances=list(range(1, 24)), funding=0)
    # when imported
    asset = services.asset_import(token_address=demo.token, payout_contract_address=demo.payout)
    synced = wait_for(lambda: _synced(asset.pk), what="sync")
    # then
    assert synced.sync_status == Asset.SyncStatus.SYNCED, synced.sync_error
    assert (synced.asset_type, synced.payment_token_decimals, synced.holders_count) == ("EQUITY", 6, 23)
    assert synced.payment_token_symbol == "LUSD"
    assert synced.payout_contract_address == gateway.normalize(demo.payout)
    holders = dict(AssetHolder.objects.filter(asset=asset).values_list("address", "balance"))
    assert holders == {gateway.normalize(h): b for h, b in zip(demo.holders, demo.balances, strict=True)}
    watched = set(EventListener.objects.values_list("contract_address", flat=True))
    assert {demo.token, demo.payout, contracts.payment_token} <= watched


def test_import_without_a_payout_contract_deploys_one(
    celery_worker: WorkController,
    chain_client: ChainClient,
    demo_asset_factory: DemoAssetFactory,
    contracts: DeployedContracts,
) -> None:
    # given
    demo = demo_asset_factory(balances=[5, 6], funding=0, salt="d")
    # when
    asset = services.asset_import(token_address=demo.token, payment_token_address=contracts.payment_token)
    synced = wait_for(lambda: _synced(asset.pk), what="sync")
    # then the deployed contract pays this asset in that token
    assert synced.sync_status == Asset.SyncStatus.SYNCED, synced.sync_error
    info = chain_client.payout_contract_info(gateway.checksum(synced.payout_contract_address))
    assert (info.asset_token, info.payment_token) == (demo.token, contracts.payment_token)


def test_import_refuses_duplicates_foreign_payout_contracts_and_non_tokens(
    chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given one imported asset
    services.asset_import(token_address=contracts.equity_token, payout_contract_address=contracts.equity_payout)
    # then
    with pytest.raises(Conflict):
        services.asset_import(token_address=contracts.equity_token, payout_contract_address=contracts.equity_payout)
    with pytest.raises(InvalidInput, match="another token"):
        services.asset_import(token_address=contracts.bond_token, payout_contract_address=contracts.equity_payout)
    with pytest.raises(InvalidInput, match="could not read"):
        services.asset_import(token_address=contracts.deployer, payment_token_address=contracts.payment_token)
    assert Asset.objects.count() == 1


def test_a_sync_that_cannot_reach_the_chain_fails_with_the_error_kept(
    chain_client: ChainClient, contracts: DeployedContracts, settings: object
) -> None:
    # given an imported asset
    asset = services.asset_import(token_address=contracts.equity_token, payout_contract_address=contracts.equity_payout)
    # when the RPC is unreachable during the sync
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"  # type: ignore[attr-defined]
    result = services.asset_sync(asset_id=asset.pk)
    # then
    assert result.sync_status == Asset.SyncStatus.FAILED
    assert result.sync_error


def test_a_holder_who_sells_out_mid_sync_does_not_drop_another_holder(
    anvil: AnvilNode,
    chain_client: ChainClient,
    demo_asset_factory: DemoAssetFactory,
    chain_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an asset of five holders, synced once, re-synced two holders per page
    demo = demo_asset_factory(balances=[10, 20, 30, 40, 50], funding=0, salt="so")
    first, second, last = demo.holders[0], demo.holders[1], demo.holders[-1]
    asset = _asset_of(demo)
    assert services.asset_sync(asset_id=asset.pk).sync_status == Asset.SyncStatus.SYNCED
    chain_settings.PAYOUT_SYNC_PAGE_SIZE = 2
    sold_after: list[int] = []

    def first_holder_sells_out(asset_id: uuid.UUID, offset: int) -> None:
        if offset == 0:  # page one is read: the token moves its last holder into the first slot
            anvil.send_as(first, to=demo.token, data=encode_call("AssetToken", "transfer", [second, 10]))
            sold_after.append(offset)

    monkeypatch.setattr(assets, "holders_page_seam", first_holder_sells_out)
    # when the re-sync runs while the first holder sells everything to the second
    result = services.asset_sync(asset_id=asset.pk)
    # then every row holds the on-chain balance at the block it was read at; the last holder is kept
    assert result.sync_status == Asset.SyncStatus.SYNCED, result.sync_error
    assert sold_after == [0]
    assert chain_client.holders_page(demo.token, 0, 10) == [last, *demo.holders[1:4]]
    rows = {row.address: row for row in AssetHolder.objects.filter(asset=asset)}
    assert set(rows) == {gateway.normalize(h) for h in demo.holders}
    for holder in demo.holders:
        row = rows[gateway.normalize(holder)]
        assert [row.balance] == chain_client.balances_of(demo.token, [holder], block=row.balance_block), holder
    assert rows[gateway.normalize(last)].balance == 50
    assert result.holders_count == 5


def test_a_re_sync_zeroes_a_holder_who_sold_out_since_the_last_sync(
    anvil: AnvilNode, chain_client: ChainClient, demo_asset_factory: DemoAssetFactory
) -> None:
    # given a synced asset of three holders, then the first sells everything to the second
    demo = demo_asset_factory(balances=[10, 20, 30], funding=0, salt="gone")
    asset = _asset_of(demo)
    services.asset_sync(asset_id=asset.pk)
    anvil.send_as(demo.holders[0], to=demo.token, data=encode_call("AssetToken", "transfer", [demo.holders[1], 10]))
    block = chain_client.block_number()
    # when
    result = services.asset_sync(asset_id=asset.pk)
    # then the seller keeps a row with a zero balance at the sync's block; the others hold theirs
    assert result.sync_status == Asset.SyncStatus.SYNCED, result.sync_error
    rows = {
        a: (int(b), n)
        for a, b, n in AssetHolder.objects.filter(asset=asset).values_list("address", "balance", "balance_block")
    }
    assert rows == {
        gateway.normalize(demo.holders[0]): (0, block),
        gateway.normalize(demo.holders[1]): (30, block),
        gateway.normalize(demo.holders[2]): (30, block),
    }
    assert result.holders_count == 2


def test_import_through_the_api(
    celery_worker: WorkController,
    api_client: APIClient,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given
    demo = demo_asset_factory(balances=[3, 4], funding=0, salt="api")
    # when
    response = api_client.post(
        "/api/v1/assets/import", {"token_address": demo.token, "payout_contract_address": demo.payout}, format="json"
    )
    # then
    assert response.status_code == 201, response.json()
    asset_id = response.json()["id"]
    wait_for(lambda: _synced(uuid.UUID(asset_id)), what="sync")
    body = api_client.get(f"/api/v1/assets/{asset_id}").json()
    assert (body["sync_status"], body["holders_count"], body["token_address"]) == ("SYNCED", 2, demo.token)
    holders = api_client.get(f"/api/v1/assets/{asset_id}/holders").json()
    assert sorted(h["balance"] for h in holders["items"]) == ["3", "4"]
    again = api_client.post("/api/v1/assets/import", {"token_address": demo.token}, format="json")
    assert again.status_code == 409
