"""Test helpers for payouts on an anvil of their own (block time, proxies, reorgs): deploy an asset
with N holders there, import it, pay everyone, and read back how the batch transactions went."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chain.client import ChainClient
from chain.localchain import ANVIL_DEV_KEYS, deploy_reference_contracts
from chain.models import ChainTransaction, SignedVersion
from chain.signers import LocalKeySigner
from config.localservices import LocalService
from payouts import gateway
from payouts.models import Distribution, HolderPayment
from tests.payouts.chainkit import DemoAsset, deploy_asset


@dataclass(frozen=True)
class OwnChain:
    node: LocalService
    client: ChainClient
    demo: DemoAsset

    def rpc(self, method: str, *params: object) -> Any:
        answer = self.client.web3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        assert "error" not in answer, answer
        return answer.get("result")


def own_chain_with_asset(anvil_factory: Callable[..., LocalService], *, holders: int, salt: str) -> OwnChain:
    """A fresh automine anvil with an asset of `holders` holders and a funded payout contract."""
    node = anvil_factory()
    contracts = deploy_reference_contracts(node.url, holders=1)
    client = ChainClient(node.url)
    demo = deploy_asset(
        client,
        LocalKeySigner(ANVIL_DEV_KEYS[0]),
        payment_token=contracts.payment_token,
        balances=[1 + (i * 7) % 13 for i in range(holders)],
        funding=10**12,
        salt=salt,
    )
    return OwnChain(node=node, client=client, demo=demo)


def batch_transactions(distribution: Distribution) -> list[ChainTransaction]:
    """The lane rows of the distribution's batches, in nonce order."""
    keys = [gateway.batch_intent_key(batch.id, batch.attempts) for batch in distribution.batches.all()]
    return list(ChainTransaction.objects.filter(intent_key__in=keys).order_by("nonce"))


def assert_everyone_paid_once(own: OwnChain, distribution: Distribution) -> None:
    """Every holder's payment-token balance on chain is exactly its planned amount (paid once, none
    skipped), the books say SUCCESS for all, and each batch was signed once."""
    planned = dict(HolderPayment.objects.filter(distribution=distribution).values_list("holder_address", "amount"))
    on_chain = {
        gateway.normalize(holder): own.client.erc20_balance(own.demo.payment_token, holder)
        for holder in own.demo.holders
    }
    assert on_chain == {address: int(amount) for address, amount in planned.items()}
    assert sum(on_chain.values()) == distribution.computed_total
    assert HolderPayment.objects.filter(distribution=distribution, status="SUCCESS").count() == len(own.demo.holders)
    for row in batch_transactions(distribution):
        assert SignedVersion.objects.filter(transaction=row).count() == 1, row.intent_key
