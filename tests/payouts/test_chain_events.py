"""Chain events through the listener (real anvil, real polling) and on-chain operator actions."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.worker import WorkController
from django.utils import timezone
from pytest_django.fixtures import Settings

from chain.abi import encode_call, encode_pause
from chain.client import ChainClient
from chain.listener import listener_poll
from chain.models import ChainEvent, ChainTransaction, EventListener
from chain.signers import LocalKeySigner
from config.errors import Conflict
from payouts import gateway, services
from payouts.models import Asset, AssetHolder, Distribution, HolderPayment
from payouts.tasks import run_scheduled_distributions_task, sweep_stuck_distributions_task
from tests.fixtures.payouts import FundPayout, ImportedAssetFactory
from tests.fixtures.waiting import wait_for
from tests.payouts.chainkit import send_many, wait_finished

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def event_settings(chain_settings: Settings) -> Settings:
    chain_settings.PAYOUT_BATCH_SIZE = 20
    chain_settings.CHAIN_CONFIRMATIONS = 0
    return chain_settings


def _poll(address: str) -> None:
    listener = EventListener.objects.get(contract_address=address)
    listener_poll(listener_id=listener.pk)


def test_listener_events_after_completion_change_nothing(
    celery_worker: WorkController,
    event_settings: Settings,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a completed distribution (confirmed from receipts)
    demo, asset = imported_asset_factory(balances=[3] * 45, funding=10**9, salt="ev", sync="worker")
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=4_500
    )
    done = wait_finished(distribution.pk)
    before = (done.status, done.paid_count, done.failed_count, done.paid_amount)
    # when the listener reads the payout contract's events (twice)
    _poll(demo.payout)
    _poll(demo.payout)
    # then every event was processed, once, and changed nothing
    events = ChainEvent.objects.filter(contract_address=demo.payout)
    names = sorted({name or "" for name in events.values_list("event_name", flat=True)})
    assert names == ["DistributionExecuted", "DistributionRegistered", "HolderPaid", "PayoutCompleted"]
    assert events.filter(event_name="HolderPaid").count() == 45
    assert set(events.values_list("status", flat=True)) == {"PROCESSED"}
    done.refresh_from_db()
    assert (done.status, done.paid_count, done.failed_count, done.paid_amount) == before == ("COMPLETED", 45, 0, 4_500)


def test_the_listener_alone_can_confirm_payments(
    event_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a planned distribution whose batch the contract executed, but whose receipt path never ran
    demo, asset = imported_asset_factory(balances=[1, 3], funding=10**6, salt="lo", sync="here")
    distribution = services.distribution_create(
        asset_id=asset.pk,
        subtype="ONE_OFF",
        amount_type="FIXED",
        amount=400,
        scheduled_at=timezone.now() + timedelta(hours=1),
    )
    services.distribution_start(distribution_id=distribution.pk)
    services.distribution_plan(distribution_id=distribution.pk)
    services.distribution_submit_batches(distribution_id=distribution.pk)
    tx = ChainTransaction.objects.get(purpose="payout_batch")
    send_many(chain_client, deployer, [(demo.payout, tx.data_bytes)])  # the contract runs it
    # when only the listener sees it
    _poll(demo.payout)
    # then the holders and the distribution are settled from events
    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid_count, distribution.paid_amount) == ("COMPLETED", 2, 400)
    assert set(HolderPayment.objects.filter(distribution=distribution).values_list("status", flat=True)) == {"SUCCESS"}


def test_holder_balance_events_keep_holders_in_step(
    event_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given an imported asset with holders A (5) and B (7), and a new address C
    demo, asset = imported_asset_factory(balances=[5, 7], funding=0, salt="hb", sync="here")
    newcomer = "0x000000000000000000000000000000000000c0DE"
    # when the owner mints to C and then the listener polls
    send_many(chain_client, deployer, [(demo.token, encode_call("AssetToken", "mint", [newcomer, 11]))])
    _poll(demo.token)
    # then C is a holder, and the asset counts three holders
    holders = dict(AssetHolder.objects.filter(asset=asset).values_list("address", "balance"))
    assert holders[gateway.normalize(newcomer)] == 11
    assert Asset.objects.get(pk=asset.pk).holders_count == 3


def test_a_dividend_set_on_chain_becomes_a_corporate_action_paid_per_token_at_the_snapshot(
    celery_worker: WorkController,
    event_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given an imported asset (2 decimals) with holders of 1.00, 2.50 and 0.01 tokens
    demo, asset = imported_asset_factory(balances=[100, 250, 1], funding=10**9, decimals=2, salt="dv", sync="worker")
    # when the issuer sets a dividend of 3.000000 LUSD per token, executable already
    execution = int(time.time()) - 60
    send_many(chain_client, deployer, [(demo.token, encode_call("AssetToken", "setDividend", [execution, 3_000_000]))])
    # and balances move AFTER the snapshot (they must not count)
    send_many(chain_client, deployer, [(demo.token, encode_call("AssetToken", "mint", [demo.holders[0], 10_000]))])
    _poll(demo.token)
    # then a SCHEDULED dividend exists; the next beat runs it
    dividend = Distribution.objects.get(asset=asset, distribution_type=Distribution.Type.CORPORATE_ACTION)
    assert (dividend.status, dividend.corporate_action, dividend.amount_per_token) == (
        "SCHEDULED",
        "DIVIDEND",
        3_000_000,
    )
    _poll(demo.token)  # seen twice: still one
    assert Distribution.objects.filter(asset=asset, distribution_type=Distribution.Type.CORPORATE_ACTION).count() == 1
    run_scheduled_distributions_task.delay()
    done = wait_finished(dividend.pk)
    assert done.status == "COMPLETED", done.error
    paid = [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders]
    assert paid == [3_000_000, 7_500_000, 30_000]


def test_an_automated_distribution_starts_when_payment_tokens_arrive(
    celery_worker: WorkController,
    event_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    fund_payout: FundPayout,
) -> None:
    # given an AUTOMATED 100 % payout on an empty payout contract
    demo, asset = imported_asset_factory(balances=[1, 1, 2], funding=0, salt="au", sync="worker")
    automated = services.distribution_create(
        asset_id=asset.pk, subtype="AUTOMATED", amount_type="PERCENTAGE", percentage_bps=10_000
    )
    # when 4,000 base units arrive and the listener sees the transfer
    fund_payout(demo, amount=4_000)
    _poll(demo.payment_token)
    # then it ran, and the next automated occurrence waits for the next deposit
    done = wait_finished(automated.pk)
    assert done.status == "COMPLETED", done.error
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [1_000, 1_000, 2_000]
    following = Distribution.objects.get(series_id=automated.series_id, occurrence=1)
    assert (following.status, following.subtype) == ("SCHEDULED", "AUTOMATED")


def test_pause_and_unpause_reach_the_chain(
    celery_worker: WorkController,
    event_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given
    demo, asset = imported_asset_factory(balances=[1], funding=0, salt="pz", sync="worker")
    # when paused
    services.asset_set_paused(asset_id=asset.pk, paused=True)
    wait_for(lambda: Asset.objects.filter(pk=asset.pk, pause_state="PAUSED").exists(), what="pause confirmed")
    assert chain_client.payout_contract_info(demo.payout).paused
    # then new distributions are refused, and pausing twice is a conflict
    with pytest.raises(Conflict):
        services.distribution_create(asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=1)
    with pytest.raises(Conflict):
        services.asset_set_paused(asset_id=asset.pk, paused=True)
    # when unpaused
    services.asset_set_paused(asset_id=asset.pk, paused=False)
    wait_for(lambda: Asset.objects.filter(pk=asset.pk, pause_state="ACTIVE").exists(), what="unpause confirmed")
    assert not chain_client.payout_contract_info(demo.payout).paused


def test_batches_that_cannot_be_sent_fail_the_distribution_and_a_retry_completes_it(
    celery_worker: WorkController,
    event_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a payout contract paused on chain behind our back
    demo, asset = imported_asset_factory(balances=[2] * 30, funding=10**6, salt="rv", sync="worker")
    send_many(chain_client, deployer, [(demo.payout, encode_pause())])
    # when a distribution runs: its batches revert at estimation and are never sent
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=3_000
    )
    failed = wait_finished(distribution.pk)
    # then
    assert failed.status == "FAILED"
    assert (failed.paid_count, failed.failed_count) == (0, 30)
    # when unpaused on chain and retried
    send_many(chain_client, deployer, [(demo.payout, encode_call("PayoutContract", "unpause", []))])
    services.distribution_retry(distribution_id=distribution.pk)
    done = wait_finished(distribution.pk)
    # then
    assert done.status == "COMPLETED", done.error
    assert {chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders} == {100}


def test_the_sweeper_recovers_a_distribution_whose_planning_message_was_lost(
    celery_worker: WorkController,
    event_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a distribution claimed IN_PROGRESS ten minutes ago whose planning task never arrived
    demo, asset = imported_asset_factory(balances=[1, 2], funding=10**6, salt="sw", sync="worker")
    distribution = services.distribution_create(
        asset_id=asset.pk,
        subtype="ONE_OFF",
        amount_type="FIXED",
        amount=30,
        scheduled_at=timezone.now() + timedelta(hours=1),
    )
    Distribution.objects.filter(pk=distribution.pk).update(
        status="IN_PROGRESS", started_at=timezone.now(), updated_at=timezone.now() - timedelta(minutes=10)
    )
    # when the sweeper runs on a worker
    sweep_stuck_distributions_task.delay()
    done = wait_finished(distribution.pk)
    # then the distribution completed
    assert done.status == "COMPLETED", done.error
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [10, 20]


def test_a_matured_bond_is_cashed_out_per_token_and_redeemed(
    celery_worker: WorkController,
    event_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a fixed-rate bond that matured, held 4 / 6
    demo, asset = imported_asset_factory(
        balances=[4, 6], funding=10**9, salt="bond", asset_type=2, maturity=int(time.time()) - 86_400, sync="worker"
    )
    assert asset.is_bond
    # when it is cashed out at 100.000000 LUSD per bond
    cash_out = services.distribution_create(
        asset_id=asset.pk,
        distribution_type=Distribution.Type.BOND_CASH_OUT,
        subtype="IMMEDIATE",
        amount_type="PER_TOKEN",
        amount_per_token=100_000_000,
    )
    done = wait_finished(cash_out.pk)
    # then holders are paid and their bonds burned
    assert done.status == "COMPLETED", done.error
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [400_000_000, 600_000_000]
    assert chain_client.balances_of(demo.token, list(demo.holders)) == [0, 0]
