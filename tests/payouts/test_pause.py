"""Pausing an asset: batches wait for the chain, a sync never undoes an operator's toggle, and a toggle
the chain refuses leaves the database saying what the chain says (with an error and an alert).

Real anvil (one node per test where timing matters), PostgreSQL, Redis and Celery workers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from celery.worker import WorkController
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from chain.localchain import ANVIL_DEV_KEYS, deploy_reference_contracts
from chain.models import ChainTransaction
from chain.services import transaction_confirm, transaction_submit
from chain.signers import LocalKeySigner
from config.errors import Conflict
from config.localservices import LocalService
from payouts import gateway, services
from payouts.models import Asset, BatchPayout, Distribution, HolderPayment
from payouts.services import assets as asset_services
from tests.agreements.servers import DiscordServer, field_of
from tests.fixtures.payouts import ImportedAssetFactory
from tests.fixtures.waiting import wait_for
from tests.fixtures.workers import running_worker
from tests.payouts.chainkit import deploy_asset, import_and_wait_synced, wait_finished

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def _toggle(asset: Asset, generation: int) -> ChainTransaction:
    """The lane row of the asset's pause toggle number `generation`."""
    return ChainTransaction.objects.get(intent_key=f"payout-pause:{asset.pk}:{generation}")


def _final_toggle(asset: Asset, generation: int) -> ChainTransaction:
    row: ChainTransaction = wait_for(
        lambda: ChainTransaction.objects.filter(
            intent_key=f"payout-pause:{asset.pk}:{generation}", status__in=ChainTransaction.Status.final()
        ).first(),
        what=f"pause toggle {generation} to be final",
    )
    return row


def test_batches_held_by_a_pause_are_sent_only_after_the_unpause_is_mined(
    transactional_db: None,
    clean_redis: None,
    chain_settings: Settings,
    anvil_factory: Callable[..., LocalService],
) -> None:
    # given a chain that mines one block per second (set up on automine, then switched: same as --block-time 1)
    node = anvil_factory()
    client = ChainClient(node.url)
    contracts = deploy_reference_contracts(node.url, holders=0)
    deployer = LocalKeySigner(ANVIL_DEV_KEYS[0])
    chain_settings.CHAIN_RPC_URL = node.url
    chain_settings.PAYOUT_BATCH_SIZE = 2
    demo = deploy_asset(
        client, deployer, payment_token=contracts.payment_token, balances=[1, 2, 3, 4, 5], funding=10**6, salt="hold"
    )
    client.web3.provider.make_request("evm_setIntervalMining", [1])  # type: ignore[arg-type]
    with running_worker():
        asset = import_and_wait_synced(demo)
    # and a running distribution whose asset the operator paused before any batch was sent
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=1_500
    )
    services.asset_set_paused(asset_id=asset.pk, paused=True)
    with running_worker():
        wait_for(lambda: _toggle(asset, 1).status == "CONFIRMED", what="pause mined")
        planned = wait_for(
            lambda: Distribution.objects.filter(pk=distribution.pk, holders_count__isnull=False).first(),
            what="planning",
        )
        assert planned.batches_count == 3
        assert set(BatchPayout.objects.filter(distribution=distribution).values_list("status", flat=True)) == {
            "PENDING"
        }
        # when the operator unpauses it
        services.asset_set_paused(asset_id=asset.pk, paused=False)
        # (and a second toggle while it is on its way is refused: it would be estimated against the old state)
        with pytest.raises(Conflict, match="on its way to the chain"):
            services.asset_set_paused(asset_id=asset.pk, paused=True)
        done = wait_finished(distribution.pk)
    # then no batch was sent into the paused contract: none failed, no holder's retry was spent
    batches = list(BatchPayout.objects.filter(distribution=distribution).order_by("number"))
    assert [(b.number, b.error) for b in batches if b.error] == []
    assert done.status == "COMPLETED", done.error
    assert set(HolderPayment.objects.filter(distribution=distribution).values_list("status", "retry_count")) == {
        ("SUCCESS", 0)
    }
    assert [b.attempts for b in batches] == [1, 1, 1]
    # and every batch was handed to the lane only once the unpause was mined and confirmed
    unpause = _toggle(asset, 2)
    sent = ChainTransaction.objects.filter(pk__in=[b.chain_transaction_id for b in batches])
    assert (unpause.status, len(sent)) == ("CONFIRMED", 3)
    assert unpause.finished_at is not None
    assert unpause.block_number is not None
    assert all(row.created_at > unpause.finished_at for row in sent)
    assert all((row.block_number or 0) > unpause.block_number for row in sent)
    assert [client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [100, 200, 300, 400, 500]


def test_a_pause_the_chain_refuses_puts_the_asset_back_as_the_chain_says_and_alerts(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    discord_alerts: DiscordServer,
) -> None:
    # given an imported payout contract whose admin is another account (this service may not pause it)
    other = LocalKeySigner(ANVIL_DEV_KEYS[1])
    demo, asset = imported_asset_factory(balances=[1, 2], funding=0, salt="notadmin", signer=other, sync="worker")
    # when the operator pauses it and the lane's transaction fails
    services.asset_set_paused(asset_id=asset.pk, paused=True)
    toggle = _final_toggle(asset, 1)
    # then the database says what the chain says: not paused, with the reason on the asset
    assert toggle.status == "FAILED"
    assert not chain_client.payout_contract_info(demo.payout).paused
    asset.refresh_from_db()
    assert not asset.is_paused
    assert asset.pause_state == Asset.PauseState.ACTIVE
    assert "only admin" in asset.pause_error
    # and the operators hear of it once
    wait_for(lambda: discord_alerts.messages, what="an alert")
    (alert,) = discord_alerts.messages
    assert field_of(alert["embeds"][0], "Asset") == f"{asset.name} ({asset.pk})"
    assert "only admin" in alert["embeds"][0]["description"]
    # and the operator can pause it again once the cause is fixed (here: it stays refused, with a new error)
    services.asset_set_paused(asset_id=asset.pk, paused=True)
    assert _final_toggle(asset, 2).status == "FAILED"


def test_an_unpause_the_chain_refuses_leaves_the_asset_paused_and_alerts(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    discord_alerts: DiscordServer,
) -> None:
    # given an asset paused on chain by this service
    demo, asset = imported_asset_factory(balances=[1, 2], funding=0, salt="rotate", sync="worker")
    services.asset_set_paused(asset_id=asset.pk, paused=True)
    assert _final_toggle(asset, 1).status == "CONFIRMED"
    # when the signing key was rotated to one that is not the contract's admin, and the operator unpauses
    chain_settings.CHAIN_SIGNER_PRIVATE_KEY = ANVIL_DEV_KEYS[1]
    services.asset_set_paused(asset_id=asset.pk, paused=False)
    toggle = _final_toggle(asset, 2)
    # then the asset stays paused, as the chain is, with the reason and one alert
    assert toggle.status == "FAILED"
    assert chain_client.payout_contract_info(demo.payout).paused
    asset.refresh_from_db()
    assert asset.is_paused
    assert asset.pause_state == Asset.PauseState.PAUSED
    assert "only admin" in asset.pause_error
    wait_for(lambda: discord_alerts.messages, what="an alert")
    assert [m["embeds"][0]["title"] for m in discord_alerts.messages] == ["Unpause failed on chain"]


def test_a_sync_never_overwrites_a_pause_made_while_it_ran(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a synced asset, and an operator who pauses it while a sync runs (after it read the chain)
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=0, salt="race", sync="worker")
    paused_by_operator: list[uuid.UUID] = []

    def operator_pauses(asset_id: uuid.UUID, offset: int) -> None:
        if not paused_by_operator:
            services.asset_set_paused(asset_id=asset_id, paused=True)
            paused_by_operator.append(asset_id)

    monkeypatch.setattr(asset_services, "holders_page_seam", operator_pauses)
    # when the sync finishes
    synced = services.asset_sync(asset_id=asset.pk)
    # then the operator's pause stands, in the database and on chain
    assert paused_by_operator == [asset.pk]
    assert synced.is_paused
    assert _final_toggle(asset, 1).status == "CONFIRMED"
    assert chain_client.payout_contract_info(demo.payout).paused
    asset.refresh_from_db()
    assert (asset.is_paused, asset.pause_state) == (True, Asset.PauseState.PAUSED)


def test_a_sync_never_overwrites_a_pause_that_was_pending_when_it_read_the_chain(
    transactional_db: None,
    clean_redis: None,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a synced asset whose pause is still on its way to the chain when a sync reads it
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=0, salt="pend", sync="here")
    services.asset_set_paused(asset_id=asset.pk, paused=True)
    toggle = _toggle(asset, 1)
    assert toggle.status == "PENDING"

    def the_pause_is_mined_mid_sync(asset_id: uuid.UUID, offset: int) -> None:
        if ChainTransaction.objects.get(pk=toggle.pk).status == "PENDING":
            transaction_submit(transaction_id=str(toggle.pk))
            assert transaction_confirm(transaction_id=str(toggle.pk)) == "CONFIRMED"

    monkeypatch.setattr(asset_services, "holders_page_seam", the_pause_is_mined_mid_sync)
    # when a sync runs (it reads the chain unpaused, then the pause is mined and confirmed)
    synced = services.asset_sync(asset_id=asset.pk)
    # then the sync did not undo the pause
    assert chain_client.payout_contract_info(gateway.checksum(demo.payout)).paused
    assert synced.is_paused
    assert synced.pause_state == Asset.PauseState.PAUSED
