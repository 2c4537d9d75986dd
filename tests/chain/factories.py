"""Builders for chain tests: payout-batch intents against the reference contracts."""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.db import transaction

from chain import abi
from chain.localchain import DeployedContracts
from chain.models import ChainTransaction
from chain.services import transaction_enqueue

E6 = 10**6


@dataclass(frozen=True)
class BatchIntent:
    distribution_id: bytes
    batch_id: bytes
    holders: list[str]
    amounts: list[int]
    data: bytes


def batch_intent(
    contracts: DeployedContracts, holders: list[str] | None = None, amounts: list[int] | None = None
) -> BatchIntent:
    """An executeBatch call paying each holder a small distinct amount, with fresh random ids."""
    holders = holders if holders is not None else list(contracts.holders[:2])
    amounts = amounts if amounts is not None else [(i + 1) * E6 for i in range(len(holders))]
    distribution_id, batch_id = os.urandom(32), os.urandom(32)
    data = abi.encode_execute_batch(
        distribution_id, batch_id, len(holders), holders, amounts, distribution_total=sum(amounts)
    )
    return BatchIntent(distribution_id, batch_id, holders, amounts, data)


def enqueue_batch(contracts: DeployedContracts, intent: BatchIntent, purpose: str = "test_batch") -> ChainTransaction:
    with transaction.atomic():
        return transaction_enqueue(
            intent_key=f"batch:{intent.batch_id.hex()}", purpose=purpose, to=contracts.equity_payout, data=intent.data
        )
