"""Executing distributions end to end: anvil, the chain lane, real Celery workers, PostgreSQL.

Amounts are checked ON CHAIN (payment-token balances of every holder) against an independent
in-memory largest-remainder oracle, and their sum against the total to the base unit.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from celery.worker import WorkController
from django.db import connection
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from chain.abi import encode_call, encode_withdraw
from chain.client import ChainClient
from chain.deploy import send_and_wait
from chain.localchain import DeployedContracts
from chain.signers import LocalKeySigner
from config.errors import Conflict
from payouts import gateway, services
from payouts.models import BatchPayout, Distribution, HolderPayment
from payouts.services import Underfunded
from payouts.tasks import run_scheduled_distributions_task
from tests.fixtures.chain import AnvilNode
from tests.fixtures.payouts import FundPayout, ImportedAssetFactory
from tests.fixtures.workers import running_worker
from tests.payouts.chainkit import DemoAsset, holder_address, wait_finished
from tests.payouts.test_allocation import _naive_largest_remainder

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

FINAL = (Distribution.Status.COMPLETED, Distribution.Status.FAILED)


@pytest.fixture
def small_batches(chain_settings: Settings) -> Settings:
    chain_settings.PAYOUT_BATCH_SIZE = 50
    return chain_settings


def _paid_on_chain(client: ChainClient, demo: DemoAsset) -> dict[str, int]:
    return {h: client.erc20_balance(demo.payment_token, h) for h in demo.holders}


def _balances(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 10_000) * rng.choice([1, 1, 7, 1_000]) for _ in range(count)]


def test_fixed_distribution_pays_every_holder_their_exact_pro_rata_share(
    celery_worker: WorkController,
    api_client: APIClient,
    small_batches: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given 333 holders (not a multiple of the batch size 50) and a funded payout contract
    balances = _balances(333, seed=1)
    demo, asset = imported_asset_factory(balances=balances, funding=10**12, salt="fixed", sync="worker")
    total = 1_000_000_007  # 1000.000007 LUSD: does not divide evenly
    # when an IMMEDIATE FIXED payout runs
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=total, concept="Q3"
    )
    done = wait_finished(distribution.pk)
    # then every holder got exactly their largest-remainder share, on chain
    assert done.status == Distribution.Status.COMPLETED, done.error
    expected = _naive_largest_remainder(
        total, sorted(zip((gateway.normalize(h) for h in demo.holders), balances, strict=True))
    )
    paid = {gateway.normalize(h): v for h, v in _paid_on_chain(chain_client, demo).items()}
    assert paid == dict(expected.items())
    assert sum(paid.values()) == total
    # and the books agree: 7 batches (6 x 50 + 33), every holder in exactly one, all SUCCESS
    assert list(
        BatchPayout.objects.filter(distribution=done).order_by("number").values_list("holders_count", "status")
    ) == [(50, "COMPLETED")] * 6 + [(33, "COMPLETED")]
    assert (done.holders_count, done.paid_count, done.failed_count, done.paid_amount) == (333, 333, 0, total)
    assert HolderPayment.objects.filter(distribution=done, status="SUCCESS").count() == 333
    assert done.execution_duration is not None
    # and the API shows it in token units, with progress, batches and payments
    body = api_client.get(f"/api/v1/distributions/{done.pk}").json()
    assert (body["amount"], body["paid_amount"], body["progress"]) == (
        "1000.000007",
        "1000.000007",
        {"paid": 333, "failed": 0, "pending": 0, "percent": 100},
    )
    batches = api_client.get(f"/api/v1/distributions/{done.pk}/batches", {"limit": 100}).json()
    assert [b["holders_count"] for b in batches["items"]] == [50] * 6 + [33]
    assert all(b["tx_hash"].startswith("0x") for b in batches["items"])
    payments = api_client.get(f"/api/v1/distributions/{done.pk}/payments", {"batch": 7, "limit": 100}).json()
    assert payments["total"] == 33


def test_percentage_distribution_pays_the_same_share_in_every_batch(
    celery_worker: WorkController,
    small_batches: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given 120 holders with EQUAL balances and 1,000 LUSD in the contract
    demo, asset = imported_asset_factory(balances=[10] * 120, funding=1_000_000_000, salt="pct", sync="worker")
    # when 12.5 % is distributed in three batches (the balance drops as the first batches pay)
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="PERCENTAGE", percentage_bps=1250
    )
    done = wait_finished(distribution.pk)
    # then the share was computed once: every holder got the same, the total is 12.5 % of the start balance
    assert done.status == Distribution.Status.COMPLETED, done.error
    paid = _paid_on_chain(chain_client, demo)
    assert set(paid.values()) == {125_000_000 // 120, 125_000_000 // 120 + 1}
    assert sum(paid.values()) == 125_000_000 == done.computed_total
    assert BatchPayout.objects.filter(distribution=done).count() == 3
    assert chain_client.erc20_balance(demo.payment_token, demo.payout) == 875_000_000


def test_two_concurrent_executes_produce_one_execution(
    celery_worker: WorkController,
    small_batches: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a scheduled distribution
    demo, asset = imported_asset_factory(balances=list(range(1, 61)), funding=10**9, salt="race", sync="worker")
    distribution = services.distribution_create(
        asset_id=asset.pk,
        subtype="ONE_OFF",
        amount_type="FIXED",
        amount=1_830_000,
        scheduled_at=timezone.now() + timedelta(hours=1),
    )
    # when two operators press "execute" at the same moment
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def press() -> None:
        barrier.wait()
        try:
            services.distribution_start(distribution_id=distribution.pk)
            outcomes.append("started")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = wait_finished(distribution.pk)
    # then one started, one was refused, and every holder was paid exactly once
    assert sorted(outcomes) == ["conflict", "started"]
    assert done.status == Distribution.Status.COMPLETED, done.error
    paid = _paid_on_chain(chain_client, demo)
    assert sum(paid.values()) == 1_830_000
    assert [paid[h] for h in demo.holders] == [i * 1_000 for i in range(1, 61)]
    assert HolderPayment.objects.filter(distribution=done).count() == 60


def test_funds_taken_out_of_band_fail_some_holders_then_a_retry_pays_only_the_unpaid(
    clean_redis: None,
    small_batches: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    imported_asset_factory: ImportedAssetFactory,
    fund_payout: FundPayout,
) -> None:
    # given 130 equal holders owed 1,000 each and a contract funded for all of them when it started
    demo, asset = imported_asset_factory(balances=[5] * 130, funding=130_000, salt="under", sync="here")
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=130_000
    )
    services.distribution_plan(distribution_id=distribution.pk)
    # when the contract's admin takes 60,000 out behind the system's back before the batches run
    send_and_wait(chain_client, deployer, to=demo.payout, data=encode_withdraw(deployer.address, 60_000))
    with running_worker():
        failed = wait_finished(distribution.pk)
        # then it FAILED with 70 paid and 60 failed (insufficient balance), progress exact
        assert failed.status == Distribution.Status.FAILED
        assert (failed.paid_count, failed.failed_count, failed.pending_count) == (70, 60, 0)
        assert set(
            HolderPayment.objects.filter(distribution=failed, status="FAILED").values_list("last_error", flat=True)
        ) == {"insufficient payout contract balance"}
        # (the lane may mine the batches in any order: whichever runs first is paid in full)
        statuses = sorted(BatchPayout.objects.filter(distribution=failed).values_list("status", flat=True))
        assert statuses == ["COMPLETED", "FAILED", "PARTIALLY_COMPLETED"]
        # and a retry is refused until the contract holds what the failed holders need
        with pytest.raises(Underfunded, match="retrying its failed holders needs 0.06"):
            services.distribution_retry(distribution_id=distribution.pk)
        # when the contract is funded and the operator retries
        fund_payout(demo, amount=100_000)
        services.distribution_retry(distribution_id=distribution.pk)
        done = wait_finished(distribution.pk)
    # then every holder has exactly 1,000 (nobody paid twice) and the contract keeps the rest
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert set(_paid_on_chain(chain_client, demo).values()) == {1_000}
    assert chain_client.erc20_balance(demo.payment_token, demo.payout) == 40_000
    assert HolderPayment.objects.filter(distribution=done, retry_count=1).count() == 60
    assert HolderPayment.objects.filter(distribution=done, retry_count=0).count() == 70
    assert set(BatchPayout.objects.filter(distribution=done).values_list("status", flat=True)) == {"COMPLETED"}
    # and a COMPLETED distribution cannot be retried
    with pytest.raises(Conflict):
        services.distribution_retry(distribution_id=distribution.pk)


def test_a_scheduled_distribution_missed_during_downtime_runs_on_the_next_beat(
    celery_worker: WorkController,
    small_batches: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a ONE_OFF distribution whose time passed three days ago while nothing ran
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=10**9, salt="late", sync="worker")
    distribution = services.distribution_create(
        asset_id=asset.pk,
        subtype="ONE_OFF",
        amount_type="FIXED",
        amount=600,
        scheduled_at=timezone.now() + timedelta(minutes=5),
    )
    Distribution.objects.filter(pk=distribution.pk).update(scheduled_at=timezone.now() - timedelta(days=3))
    # when beat sends the periodic task to a real worker
    run_scheduled_distributions_task.delay()
    done = wait_finished(distribution.pk)
    # then it ran
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [100, 200, 300]


def test_a_transfer_mined_just_before_execute_is_reflected_in_the_split(
    anvil: AnvilNode,
    celery_worker: WorkController,
    api_client: APIClient,
    small_batches: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    contracts: DeployedContracts,
) -> None:
    # given a synced asset held 10 / 30
    demo, asset = imported_asset_factory(balances=[10, 30], funding=10**9, salt="fresh", sync="worker")
    # when the first holder sells everything to a new address just before execute, and no listener has
    # seen it yet (the holder table still says 10 / 30)
    buyer = holder_address(0, "fresh-buyer")
    sale = anvil.send_as(demo.holders[0], to=demo.token, data=encode_call("AssetToken", "transfer", [buyer, 10]))
    distribution = services.distribution_create(asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=400)
    done = wait_finished(distribution.pk)
    # then the split follows the chain at the moment it started: the buyer is paid, the seller not
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert [chain_client.erc20_balance(contracts.payment_token, a) for a in (*demo.holders, buyer)] == [0, 300, 100]
    # and the block the view was read at is on the distribution, in the API
    assert done.snapshot_block is not None
    assert done.snapshot_block >= sale.block_number
    assert api_client.get(f"/api/v1/distributions/{done.pk}").json()["snapshot_block"] == done.snapshot_block
