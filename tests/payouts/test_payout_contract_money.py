"""What the payout contract pays, end to end on anvil with real workers: a bond cash-out pays
exactly what it burns, a distribution never pays beyond its registered total, tokens whose
`transfer` returns nothing are paid like any other, and the admin can take leftover funds back.
"""

from __future__ import annotations

import time

import pytest
from celery.worker import WorkController
from pytest_django.fixtures import Settings

from chain import abi
from chain.client import ChainClient
from chain.deploy import send_and_wait
from chain.localchain import DeployedContracts
from chain.signers import LocalKeySigner
from payouts import gateway, services
from payouts.models import Distribution, HolderPayment
from tests.fixtures.chain import AnvilNode
from tests.fixtures.hostile import HostileContracts
from tests.fixtures.payouts import DemoAssetFactory, ImportedAssetFactory
from tests.fixtures.workers import running_worker
from tests.payouts.chainkit import holder_address, import_and_wait_synced, wait_finished

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

PRINCIPAL = 100_000_000  # 100.000000 LUSD per bond


def test_cash_out_pays_exactly_what_it_burns(
    anvil: AnvilNode,
    clean_redis: None,
    chain_settings: Settings,
    chain_client: ChainClient,
    imported_asset_factory: ImportedAssetFactory,
    contracts: DeployedContracts,
) -> None:
    # given a matured bond held 40 / 60 / 100, and a cash-out planned from those balances
    demo, asset = imported_asset_factory(
        balances=[40, 60, 100],
        funding=10**12,
        salt="burn",
        asset_type=2,
        maturity=int(time.time()) - 86_400,
        sync="here",
    )
    cash_out = services.distribution_create(
        asset_id=asset.pk,
        distribution_type=Distribution.Type.BOND_CASH_OUT,
        subtype="IMMEDIATE",
        amount_type="PER_TOKEN",
        amount_per_token=PRINCIPAL,
    )
    services.distribution_plan(distribution_id=cash_out.pk)
    # when tokens move between planning and execution: the first holder sends 15 to a fresh
    # address, the second sends 20 to the third
    h0, h1, h2 = demo.holders
    fresh = holder_address(99, "burn")
    anvil.send_as(h0, to=demo.token, data=abi.encode_call("AssetToken", "transfer", [fresh, 15]))
    anvil.send_as(h1, to=demo.token, data=abi.encode_call("AssetToken", "transfer", [h2, 20]))
    everyone = [h0, h1, h2, fresh]
    before = chain_client.balances_of(demo.token, everyone)
    with running_worker():
        done = wait_finished(cash_out.pk)
    after = chain_client.balances_of(demo.token, everyone)
    paid = [chain_client.erc20_balance(contracts.payment_token, a) for a in everyone]
    # then for every address what was paid is exactly what was burned times the principal
    burned = [b - a for b, a in zip(before, after, strict=True)]
    assert paid == [tokens * PRINCIPAL for tokens in burned]
    # the third holder burned exactly its planned 100 and keeps the 20 it received later
    assert (burned, after[2]) == ([0, 0, 100, 0], 20)
    # and the holders who hold less than planned failed with a reason a person can read
    assert done.status == Distribution.Status.FAILED
    failures = dict(
        HolderPayment.objects.filter(distribution=done, status="FAILED").values_list("holder_address", "last_error")
    )
    assert set(failures) == {gateway.normalize(h0), gateway.normalize(h1)}
    assert set(failures.values()) == {"the holder holds fewer tokens than the cash-out redeems"}


def test_a_batch_can_never_pay_more_than_its_distributions_registered_total(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    contracts: DeployedContracts,
    imported_asset_factory: ImportedAssetFactory,
) -> None:
    # given a distribution of 600 that completed
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=10**9, salt="cap", sync="worker")
    distribution = services.distribution_create(asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=600)
    done = wait_finished(distribution.pk)
    assert done.status == Distribution.Status.COMPLETED, done.error
    held = chain_client.erc20_balance(contracts.payment_token, demo.payout)
    # when the payout role sends one more batch under that distribution, paying a stranger
    stranger = holder_address(7, "cap-stranger")
    distribution_id = gateway.to_bytes32(done.chain_distribution_id)
    extra = abi.encode_execute_batch(distribution_id, b"\7" * 32, 3, [stranger], [10**6], distribution_total=600)
    receipt = send_and_wait(chain_client, deployer, to=demo.payout, data=extra)
    # then the stranger is refused (beyond the total), and nothing left the contract
    events = [(e.event_name, e.args) for e in chain_client.decode_logs(receipt)]
    assert ("HolderPaymentFailed", {
        "distributionId": distribution_id, "batchId": b"\7" * 32, "holder": stranger, "amount": 10**6, "reason": 4,
    }) in events  # fmt: skip
    assert chain_client.erc20_balance(contracts.payment_token, stranger) == 0
    assert chain_client.erc20_balance(contracts.payment_token, demo.payout) == held
    # and the total cannot be raised by claiming another one
    raised = abi.encode_execute_batch(
        distribution_id, b"\x08" * 32, 3, [stranger], [10**6], distribution_total=600 + 10**6
    )
    with pytest.raises(Exception, match="distribution total differs"):
        chain_client.estimate_gas(sender=deployer.address, to=demo.payout, data=raised)


def test_a_token_whose_transfer_returns_nothing_pays_every_holder(
    celery_worker: WorkController,
    chain_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    hostile_contracts: HostileContracts,
    demo_asset_factory: DemoAssetFactory,
) -> None:
    # given an asset paid in a USDT-style token (transfer returns no value)
    token = hostile_contracts.deploy(chain_client, deployer, "NoReturnToken")
    demo = demo_asset_factory(balances=[1, 2, 3, 4], funding=0, salt="usdt", payment_token=token)
    hostile_contracts.call(chain_client, deployer, "NoReturnToken", token, "mint", [demo.payout, 10**9])
    asset = import_and_wait_synced(demo)
    # when a payout runs
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=1_000
    )
    done = wait_finished(distribution.pk)
    # then every holder got their share
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert [chain_client.erc20_balance(token, h) for h in demo.holders] == [100, 200, 300, 400]
