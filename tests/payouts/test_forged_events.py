"""Only a distribution's own payout contract speaks for it: forged payout events from any other
contract (a hostile payment token, an imported third-party payout contract) move no payment, on
the receipt path or on the listener path. Real anvil, real workers, hostile contracts on chain.
"""

from __future__ import annotations

import uuid

import pytest
from celery.worker import WorkController
from django.utils import timezone
from pytest_django.fixtures import Settings

from chain.client import ChainClient
from chain.listener import listener_poll
from chain.localchain import DeployedContracts
from chain.models import EventListener
from chain.signers import LocalKeySigner
from payouts import gateway, services
from payouts.models import Asset, BatchPayout, Distribution, HolderPayment
from tests.fixtures.hostile import HostileContracts
from tests.fixtures.payouts import DemoAssetFactory, ImportedAssetFactory
from tests.fixtures.waiting import wait_for
from tests.payouts.chainkit import DemoAsset, import_and_wait_synced, wait_finished

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def _victim(imported_asset_factory: ImportedAssetFactory) -> Distribution:
    """A real asset with a planned distribution whose 3 holders are still waiting to be paid."""
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=0, salt="victim", sync="worker")
    distribution = Distribution.objects.create(
        asset=asset,
        subtype=Distribution.Subtype.ONE_OFF,
        amount_type=Distribution.AmountType.FIXED,
        amount=600,
        computed_total=600,
        status=Distribution.Status.IN_PROGRESS,
        started_at=timezone.now(),
        holders_count=3,
        batches_count=1,
        batch_size=100,
        chain_distribution_id=gateway.chain_distribution_id(uuid.uuid4()),
    )
    HolderPayment.objects.bulk_create(
        HolderPayment(
            distribution=distribution,
            batch_number=1,
            holder_address=gateway.normalize(holder),
            balance=balance,
            amount=balance * 100,
            updated_at=timezone.now(),
        )
        for holder, balance in zip(demo.holders, demo.balances, strict=True)
    )
    BatchPayout.objects.create(distribution=distribution, number=1, holders_count=3)
    # the victim's batch is never sent: its asset is paused (in the database only)
    Asset.objects.filter(pk=asset.pk).update(is_paused=True)
    return distribution


def _victim_holders(distribution: Distribution) -> list[str]:
    return [
        gateway.checksum(a)
        for a in HolderPayment.objects.filter(distribution=distribution)
        .order_by("holder_address")
        .values_list("holder_address", flat=True)
    ]


def _untouched(distribution: Distribution, chain_client: ChainClient) -> None:
    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid_count, distribution.paid_amount) == ("IN_PROGRESS", 0, 0)
    assert set(HolderPayment.objects.filter(distribution=distribution).values_list("status", flat=True)) == {"PENDING"}
    payout = gateway.checksum(distribution.asset.payout_contract_address)
    for holder in _victim_holders(distribution):
        assert not chain_client.is_paid(payout, gateway.to_bytes32(distribution.chain_distribution_id), holder)


def test_a_payment_token_cannot_mark_another_distributions_holders_paid(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    hostile_contracts: HostileContracts,
    imported_asset_factory: ImportedAssetFactory,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given a victim distribution waiting to pay 3 holders
    victim = _victim(imported_asset_factory)
    # and an attacker's asset paid in a token whose transfer emits a forged HolderPaid for the victims
    forging = hostile_contracts.deploy(chain_client, deployer, "ForgingToken")
    attacker: DemoAsset = demo_asset_factory(balances=[5, 5], funding=0, salt="attacker", payment_token=forging)
    hostile_contracts.call(chain_client, deployer, "ForgingToken", forging, "mint", [attacker.payout, 10**9])
    hostile_contracts.call(
        chain_client,
        deployer,
        "ForgingToken",
        forging,
        "setForgery",
        [gateway.to_bytes32(victim.chain_distribution_id), _victim_holders(victim), 100],
    )
    attacker_asset = import_and_wait_synced(attacker)
    # when the attacker's distribution is paid (its batch receipt carries the forged events)
    distribution = services.distribution_create(
        asset_id=attacker_asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=1_000
    )
    done = wait_finished(distribution.pk)
    # then the attacker's own holders were paid, and the victims are exactly as before
    assert done.status == Distribution.Status.COMPLETED, done.error
    _untouched(victim, chain_client)


def test_an_imported_third_party_payout_contract_cannot_pay_another_distribution(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    contracts: DeployedContracts,
    hostile_contracts: HostileContracts,
    imported_asset_factory: ImportedAssetFactory,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given a victim distribution and an asset imported with a third-party payout contract
    victim = _victim(imported_asset_factory)
    stranger = demo_asset_factory(balances=[7], funding=0, salt="stranger")
    forging = hostile_contracts.deploy(
        chain_client, deployer, "ForgingPayoutContract", [stranger.token, contracts.payment_token]
    )
    asset = services.asset_import(token_address=stranger.token, payout_contract_address=forging)
    wait_for(lambda: Asset.objects.filter(pk=asset.pk, sync_status="SYNCED").exists(), what="asset sync")
    # when it emits HolderPaid for each victim and the listener reads its events
    for holder in _victim_holders(victim):
        hostile_contracts.call(
            chain_client,
            deployer,
            "ForgingPayoutContract",
            forging,
            "forge",
            [gateway.to_bytes32(victim.chain_distribution_id), b"\1" * 32, holder, 100],
        )
    chain_client.web3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    listener = EventListener.objects.get(contract_address=forging)
    result = listener_poll(listener_id=listener.pk)
    # then the events were read, and the victims are exactly as before
    assert result.stored == 3, result.summary()
    _untouched(victim, chain_client)
