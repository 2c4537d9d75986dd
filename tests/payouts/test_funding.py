"""Funding before paying: a distribution the payout contract cannot pay in full never starts, two
distributions never count the same balance, and the admin withdraws only what nothing reserved.
Real anvil, PostgreSQL, Redis and workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from celery.worker import WorkController
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from chain.client import ChainClient
from chain.localchain import DeployedContracts
from config.errors import Conflict
from payouts import services
from payouts.models import Asset, Distribution, FundsWithdrawal, HolderPayment
from tests.agreements.servers import DiscordServer
from tests.fixtures.payouts import FundPayout, ImportedAssetFactory
from tests.fixtures.waiting import wait_for
from tests.payouts.chainkit import holder_address, wait_finished

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def _scheduled(asset: Asset, amount: int) -> Distribution:
    return services.distribution_create(
        asset_id=asset.pk,
        subtype="ONE_OFF",
        amount_type="FIXED",
        amount=amount,
        scheduled_at=timezone.now() + timedelta(hours=1),
    )


def test_a_payout_larger_than_the_contract_holds_is_refused_before_anyone_is_paid(
    clean_redis: None,
    chain_settings: Settings,
    api_client: APIClient,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a payout contract holding 1,000.000000
    asset = imported_asset_factory(balances=[1, 1], funding=10**9, salt="fund", sync="here").asset
    # when an IMMEDIATE payout of 1,500 is asked for
    response = api_client.post(
        f"/api/v1/assets/{asset.pk}/distributions",
        {"subtype": "IMMEDIATE", "amount_type": "FIXED", "amount": "1500"},
        format="json",
    )
    # then it is a 409 naming what the contract holds and what the payout needs, and nothing exists
    assert response.status_code == 409, response.json()
    assert response.json()["detail"] == (
        "the payout contract holds 1000 payment-token units; this distribution needs 1500: "
        "fund the contract with at least 500 more"
    )
    assert not Distribution.objects.exists()
    # and a scheduled one that is executed by hand is refused the same way and stays SCHEDULED
    scheduled = _scheduled(asset, 1_500_000_000)
    response = api_client.post(f"/api/v1/distributions/{scheduled.pk}/execute")
    assert response.status_code == 409
    assert "needs 1500" in response.json()["detail"]
    assert Distribution.objects.get(pk=scheduled.pk).status == Distribution.Status.SCHEDULED
    # and in the admin: the "Execute now" action says why, and the add form shows it on the form
    admin = Client()
    admin.force_login(User.objects.create_superuser("treasurer", password="treasurer-pass-123"))
    page = admin.post(
        "/admin/payouts/distribution/",
        {"action": "execute_now", "_selected_action": [str(scheduled.pk)]},
        follow=True,
    )
    assert "this distribution needs 1500: fund the contract with at least 500 more" in page.content.decode()
    form = admin.post(
        "/admin/payouts/distribution/add/",
        {"asset": asset.pk, "subtype": "IMMEDIATE", "amount_type": "FIXED", "amount": "1500"},
    )
    assert form.status_code == 200
    assert "this distribution needs 1500" in form.content.decode()
    assert Distribution.objects.get(pk=scheduled.pk).status == Distribution.Status.SCHEDULED
    assert Distribution.objects.count() == 1
    assert not HolderPayment.objects.exists()


def test_two_distributions_cannot_count_the_same_balance(
    clean_redis: None,
    chain_settings: Settings,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a contract holding 1,000 and a running distribution of 700 (started, nothing paid yet)
    asset = imported_asset_factory(balances=[1, 1], funding=1_000, salt="twice", sync="here").asset
    first = _scheduled(asset, 700)
    services.distribution_start(distribution_id=first.pk)
    # when a second one of 500 is started
    second = _scheduled(asset, 500)
    with pytest.raises(Conflict) as refused:
        services.distribution_start(distribution_id=second.pk)
    # then it is refused: 700 of the 1,000 are promised to the first
    assert str(refused.value) == (
        "the payout contract holds 0.001 payment-token units, of which 0.0007 is reserved by 1 running "
        "distribution(s) or withdrawal(s); this distribution needs 0.0005: fund the contract with at least 0.0002 more"
    )
    # and one of 300 fits
    third = _scheduled(asset, 300)
    assert services.distribution_start(distribution_id=third.pk).status == Distribution.Status.IN_PROGRESS


def test_two_starts_at_the_same_moment_never_share_one_balance(
    clean_redis: None,
    chain_settings: Settings,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a contract holding 1,000 and two scheduled distributions of 600 each
    asset = imported_asset_factory(balances=[1], funding=1_000, salt="race-fund", sync="here").asset
    pair = [_scheduled(asset, 600), _scheduled(asset, 600)]
    # when both are executed at the same moment
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def start(distribution: Distribution) -> None:
        barrier.wait()
        try:
            services.distribution_start(distribution_id=distribution.pk)
            outcomes.append("started")
        except Conflict:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(d,)) for d in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then exactly one started
    assert sorted(outcomes) == ["refused", "started"]
    assert Distribution.objects.filter(status=Distribution.Status.IN_PROGRESS).count() == 1


def test_the_scheduler_and_an_operator_starting_one_distribution_at_once_start_it_once(
    clean_redis: None, funded_asset: Asset
) -> None:
    # given ten due distributions
    outcomes: list[str] = []
    for _ in range(10):
        due = _scheduled(funded_asset, 1_000)
        Distribution.objects.filter(pk=due.pk).update(scheduled_at=timezone.now() - timedelta(minutes=1))
        barrier = threading.Barrier(2)

        def race(start: Callable[[], object], due: Distribution = due, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                start()
                outcomes.append("started")
            except Conflict:
                outcomes.append("refused")
            except Exception as exc:  # a deadlock or anything else is what this test looks for
                outcomes.append(f"{type(exc).__name__}: {exc}")
            finally:
                connection.close()

        # when beat and an operator start each one at the same moment
        threads = [
            threading.Thread(
                target=race,
                args=(lambda d=due: services.distribution_start_due(distribution_id=d.pk, now=timezone.now()),),
            ),
            threading.Thread(target=race, args=(lambda d=due: services.distribution_start(distribution_id=d.pk),)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # then each started exactly once and nothing else went wrong
    assert sorted(outcomes) == ["refused"] * 10 + ["started"] * 10
    assert Distribution.objects.filter(status=Distribution.Status.IN_PROGRESS).count() == 10


def test_a_due_payout_that_finds_the_contract_short_waits_with_a_reason_and_an_alert_then_runs_once_funded(
    celery_worker: WorkController,
    discord_alerts: DiscordServer,
    chain_settings: Settings,
    api_client: APIClient,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    imported_asset_factory: ImportedAssetFactory,
    fund_payout: FundPayout,
) -> None:
    # given a payout of 1,500 that fell due while its contract holds 1,000
    demo, asset = imported_asset_factory(balances=[1, 2], funding=10**9, salt="wait", sync="here")
    due = _scheduled(asset, 1_500_000_000)
    Distribution.objects.filter(pk=due.pk).update(scheduled_at=timezone.now() - timedelta(minutes=1))
    # when the scheduler looks, twice
    services.run_scheduled_distributions()
    services.run_scheduled_distributions()
    # then it did not start: it says why (API too), nobody was paid, and the operators were alerted once
    waiting = Distribution.objects.get(pk=due.pk)
    assert waiting.status == Distribution.Status.SCHEDULED
    assert waiting.status_reason.startswith("waiting for funds: the payout contract holds 1000 payment-token units")
    assert api_client.get(f"/api/v1/distributions/{due.pk}").json()["status_reason"] == waiting.status_reason
    assert not HolderPayment.objects.exists()
    assert [m["embeds"][0]["title"] for m in discord_alerts.messages] == ["Payout waiting for funds"]
    # when the contract is funded, the next tick starts it and it pays in full
    fund_payout(demo, amount=500_000_000)
    services.run_scheduled_distributions()
    done = wait_finished(due.pk)
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert done.status_reason == ""
    assert [chain_client.erc20_balance(contracts.payment_token, h) for h in demo.holders] == [500_000_000, 10**9]


def test_the_admin_withdraws_leftover_funds_but_never_reserved_ones(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    contracts: DeployedContracts,
) -> None:
    # given a contract holding 1,000.000000 with 600 of it promised to a running distribution
    demo, asset = imported_asset_factory(balances=[1], funding=10**9, salt="withdraw", sync="here")
    running = _scheduled(asset, 600_000_000)
    Distribution.objects.filter(pk=running.pk).update(status=Distribution.Status.IN_PROGRESS)
    treasury = holder_address(1, "treasury")
    # when the admin asks for 500 back
    with pytest.raises(Conflict) as refused:
        services.funds_withdraw(asset_id=asset.pk, to_address=treasury, amount=500_000_000)
    # then it is refused (only 400 are free), and 400 can be taken
    assert "needs 500: fund the contract with at least 100 more" in str(refused.value)
    withdrawal = services.funds_withdraw(asset_id=asset.pk, to_address=treasury, amount=400_000_000)
    done = wait_for(
        lambda: FundsWithdrawal.objects.filter(pk=withdrawal.pk).exclude(status="PENDING").first(),
        what="withdrawal",
    )
    assert done.status == FundsWithdrawal.Status.CONFIRMED, done.error
    assert done.tx_hash.startswith("0x")
    assert chain_client.erc20_balance(contracts.payment_token, treasury) == 400_000_000
    assert chain_client.erc20_balance(contracts.payment_token, demo.payout) == 600_000_000
    # and the running distribution is still paid in full
    services.distribution_plan(distribution_id=running.pk)
    assert wait_finished(running.pk).status == Distribution.Status.COMPLETED
    assert chain_client.erc20_balance(contracts.payment_token, demo.holders[0]) == 600_000_000
