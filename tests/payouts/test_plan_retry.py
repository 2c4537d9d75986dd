"""A distribution whose planning found nothing to split can be retried once the payout
contract is funded: the retry plans again from the balance of that moment. Real anvil, PostgreSQL,
Redis and a Celery worker.
"""

from __future__ import annotations

import uuid

import pytest
from pytest_django.fixtures import Settings

from chain.abi import encode_call
from chain.client import ChainClient, to_hex
from chain.signers import LocalKeySigner
from payouts import services
from payouts.models import Distribution
from payouts.services import Underfunded
from tests.fixtures.chain import AnvilNode
from tests.fixtures.payouts import FundPayout, ImportedAssetFactory
from tests.fixtures.waiting import wait_for
from tests.fixtures.workers import running_worker

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def _drain(anvil: AnvilNode, client: ChainClient, *, payout: str, payment_token: str, to: str) -> None:
    """Take every payment token out of the payout contract behind the service's back (anvil lets
    the test send as the contract itself)."""
    balance = client.erc20_balance(payment_token, payout)
    data = encode_call("PaymentToken", "transfer", [to, balance])
    anvil.rpc("anvil_setBalance", payout, hex(10**18))
    anvil.rpc("anvil_impersonateAccount", payout)
    try:
        tx_hash = anvil.rpc("eth_sendTransaction", {"from": payout, "to": payment_token, "data": to_hex(data)})
    finally:
        anvil.rpc("anvil_stopImpersonatingAccount", payout)
    assert client.wait_for_receipt(str(tx_hash)).succeeded
    assert client.erc20_balance(payment_token, payout) == 0


def _settled(distribution_id: uuid.UUID) -> Distribution:
    settled: Distribution = wait_for(
        lambda: Distribution.objects.filter(pk=distribution_id, status__in=("COMPLETED", "FAILED")).first(),
        timeout=120,
        what="distribution to finish",
    )
    return settled


def test_a_failed_percentage_plan_is_retried_from_the_current_balance(
    transactional_db: None,
    clean_redis: None,
    anvil: AnvilNode,
    chain_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    imported_asset_factory: ImportedAssetFactory,
    fund_payout: FundPayout,
) -> None:
    # given a 50% distribution started while the contract held funds, then emptied before it was planned
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=1_000, salt="pct", sync="here")
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="PERCENTAGE", percentage_bps=5_000
    )
    _drain(anvil, chain_client, payout=demo.payout, payment_token=demo.payment_token, to=deployer.address)
    with running_worker():
        # when it is planned against the empty contract
        failed = _settled(distribution.pk)
        # then it fails, paying nobody
        assert failed.status == "FAILED"
        assert "zero" in failed.error
        assert failed.holders_count is None
        # when the contract is funded with 600 and the distribution retried
        fund_payout(demo, amount=600)
        services.distribution_retry(distribution_id=distribution.pk)
        done = _settled(distribution.pk)
    # then it planned again from the current balance: 50% of 600, split 1:2:3, on chain
    assert done.status == "COMPLETED", done.error
    assert done.computed_total == 300
    assert [chain_client.erc20_balance(demo.payment_token, h) for h in demo.holders] == [50, 100, 150]
    assert chain_client.erc20_balance(demo.payment_token, demo.payout) == 300


def test_retrying_a_failed_plan_while_the_contract_is_still_empty_is_refused_and_changes_nothing(
    transactional_db: None,
    clean_redis: None,
    anvil: AnvilNode,
    chain_settings: Settings,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    imported_asset_factory: ImportedAssetFactory,
    fund_payout: FundPayout,
) -> None:
    # given a 50% distribution whose planning found the contract emptied (planned on this thread)
    demo, asset = imported_asset_factory(balances=[1, 2, 3], funding=1_000, salt="pct0", sync="here")
    distribution = services.distribution_create(
        asset_id=asset.pk, subtype="IMMEDIATE", amount_type="PERCENTAGE", percentage_bps=5_000
    )
    _drain(anvil, chain_client, payout=demo.payout, payment_token=demo.payment_token, to=deployer.address)
    services.distribution_plan(distribution_id=distribution.pk)
    assert Distribution.objects.get(pk=distribution.pk).status == "FAILED"
    # when the operator retries before funding the contract
    with pytest.raises(Underfunded, match="fund the contract"):
        services.distribution_retry(distribution_id=distribution.pk)
    # then the retry is refused (it would only fail the same way) and the distribution is as it was
    assert Distribution.objects.get(pk=distribution.pk).status == "FAILED"
    # when funded, the retry is accepted
    fund_payout(demo, amount=600)
    assert services.distribution_retry(distribution_id=distribution.pk).status == "IN_PROGRESS"
