"""Crash safety: a real worker process killed at a seam of the lane, then recovery by the sweeper
and a real Celery worker. Every batch must end paid exactly once, checked on chain."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from chain.client import ChainClient
from chain.localchain import ANVIL_DEV_KEYS, DeployedContracts
from chain.models import ChainTransaction, SignedVersion
from chain.tasks import sweep_transactions_task
from config.celery_app import app as celery_app
from config.locks import lock_key, redis_client
from tests.chain.factories import batch_intent, enqueue_batch
from tests.fixtures.crashing import CRASH_EXIT_CODE, run_crashing_worker

Status = ChainTransaction.Status


def _run_crashing_worker(seam: str, rpc_url: str) -> int:
    env = {"CHAIN_RPC_URL": rpc_url, "CHAIN_SIGNER": "local", "CHAIN_SIGNER_PRIVATE_KEY": ANVIL_DEV_KEYS[0]}
    return run_crashing_worker("tests.chain.crash_worker", seam, env)


def _recover(ids: list[str], timeout: float = 45) -> None:
    """Run a real worker and kick the sweeper until every transaction is final."""
    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"):
        deadline = time.monotonic() + timeout
        while ChainTransaction.objects.filter(pk__in=ids, status__in=Status.final()).count() < len(ids):
            assert time.monotonic() < deadline, "recovery did not finish in time"
            sweep_transactions_task.delay(stale_seconds=0)
            time.sleep(1)


@pytest.mark.parametrize("seam", ["before_broadcast", "after_broadcast", "before_receipt_recorded"])
def test_a_worker_killed_at_a_seam_leaves_every_batch_paid_exactly_once(
    seam: str,
    transactional_db: None,
    clean_redis: None,
    chain_client: ChainClient,
    contracts: DeployedContracts,
) -> None:
    # given: three batches waiting in the chain queue
    sender = contracts.deployer
    nonce_before = chain_client.nonce(sender, "latest")
    intents = [batch_intent(contracts, [holder], [(i + 3) * 10**6]) for i, holder in enumerate(contracts.holders[:3])]
    ids = [str(enqueue_batch(contracts, intent).pk) for intent in intents]
    # when: the worker dies at the seam
    assert _run_crashing_worker(seam, chain_client.rpc_url) == CRASH_EXIT_CODE
    at_crash = ChainTransaction.objects.filter(pk__in=ids).exclude(status=Status.PENDING)
    mined_at_crash = [
        chain_client.get_receipt(version.tx_hash) is not None
        for version in SignedVersion.objects.filter(transaction__in=at_crash)
    ]
    expected_at_crash = {
        "before_broadcast": ([Status.SIGNED], [False]),  # the first one, stored but never sent
        "after_broadcast": ([Status.SIGNED], [True]),  # the first one, on chain but not recorded
        "before_receipt_recorded": ([Status.BROADCAST] * 3, [True] * 3),  # all sent, none confirmed
    }[seam]
    assert ([row.status for row in at_crash], mined_at_crash) == expected_at_crash
    # ... a submitting worker dies holding the sender's lane lock, which expires LANE_LOCK_TIMEOUT
    # later (confirming takes no lock): fast-forward that expiry
    lock = lock_key(f"chain-lane:{contracts.chain_id}:{sender}")
    assert (redis_client().ttl(lock) > 0) == (seam != "before_receipt_recorded")
    redis_client().pexpire(lock, 1)
    # ... and recovery runs
    _recover(ids)
    # then: every batch paid exactly once, by one transaction each
    rows = list(ChainTransaction.objects.filter(pk__in=ids))
    assert {row.status for row in rows} == {Status.CONFIRMED}
    assert chain_client.nonce(sender, "latest") == nonce_before + len(intents)
    assert SignedVersion.objects.filter(transaction__in=rows).count() == len(intents)
    for intent in intents:
        (holder,), (amount,) = intent.holders, intent.amounts
        assert chain_client.is_paid(contracts.equity_payout, intent.distribution_id, holder)
        assert chain_client.batch_executed(contracts.equity_payout, intent.batch_id)
        assert chain_client.erc20_balance(contracts.payment_token, holder) == amount
