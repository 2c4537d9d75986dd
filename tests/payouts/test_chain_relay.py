"""Payouts through Hedera's JSON-RPC relay, which does not buffer transactions by nonce, and
through an ordinary node, which does: the lane stays pipelined where it can and waits its turn
where it must. anvil mining a block every second (as with `--block-time 1`) behind a proxy
(tests/fixtures/rpc_proxy.py), a real Celery worker, and the chain sweeper at its beat cadence."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from pytest_django.fixtures import Settings

from config.localservices import LocalService
from payouts import services
from payouts.models import Distribution
from tests.fixtures.rpc_proxy import RpcProxy
from tests.fixtures.workers import running_chain_sweeper, running_worker
from tests.payouts.chainkit import import_and_wait_synced, wait_finished
from tests.payouts.chainrun import (
    assert_everyone_paid_once,
    batch_transactions,
    own_chain_with_asset,
)

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

HOLDERS = 320
BATCH_SIZE = 50  # 7 batches: 6 x 50 + 20


def test_behind_a_relay_refusing_nonces_too_high_a_320_holder_payout_pays_everyone_once(
    chain_settings: Settings,
    clean_redis: None,
    anvil_factory: Callable[..., LocalService],
    rpc_proxy_factory: Callable[[str], RpcProxy],
) -> None:
    # given: a chain with a block every second behind a relay that refuses a nonce above the mined one
    own = own_chain_with_asset(anvil_factory, holders=HOLDERS, salt="relay")
    own.rpc("evm_setIntervalMining", 1)
    relay = rpc_proxy_factory(own.node.url)
    relay.relay_nonces = True
    chain_settings.CHAIN_RPC_URL = relay.url
    chain_settings.CHAIN_CONFIRMATIONS = 1
    chain_settings.PAYOUT_BATCH_SIZE = BATCH_SIZE
    with running_worker(), running_chain_sweeper():
        asset = import_and_wait_synced(own.demo)
        # when: the whole payout is handed to the lane at once
        started = time.monotonic()
        distribution = services.distribution_create(
            asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=320_000_001, concept="relay"
        )
        done = wait_finished(distribution.pk, timeout=150)
        took = time.monotonic() - started
    # then: everyone paid once, each batch sent with the nonce and bytes it was first signed with
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert done.batches_count == 7
    assert_everyone_paid_once(own, done)
    rows = batch_transactions(done)
    nonces = [int(row.nonce or 0) for row in rows]
    assert nonces == list(range(nonces[0], nonces[0] + 7))
    assert relay.refused_nonces, "the relay never refused a nonce: the test proves nothing"
    assert relay.accepted_nonces == sorted(set(relay.accepted_nonces))  # accepted in nonce order, once each
    blocks = [int(row.block_number or 0) for row in rows]
    assert blocks == sorted(blocks)
    print(  # noqa: T201 - the measurement is the point
        f"\nrelay: 7 batches paid in {took:.1f}s, {len(relay.refused_nonces)} refusals, {len(set(blocks))} blocks"
    )


@pytest.mark.parametrize("confirmations", [0, 1])
def test_on_a_node_that_buffers_nonces_a_payout_stays_pipelined_with_several_batches_per_block(
    confirmations: int,
    chain_settings: Settings,
    clean_redis: None,
    anvil_factory: Callable[..., LocalService],
    rpc_proxy_factory: Callable[[str], RpcProxy],
) -> None:
    # given: the same chain and payout behind a pass-through proxy
    own = own_chain_with_asset(anvil_factory, holders=HOLDERS, salt="pipe")
    own.rpc("evm_setIntervalMining", 1)
    proxy = rpc_proxy_factory(own.node.url)
    chain_settings.CHAIN_RPC_URL = proxy.url
    chain_settings.CHAIN_CONFIRMATIONS = confirmations
    chain_settings.PAYOUT_BATCH_SIZE = BATCH_SIZE
    with running_worker(), running_chain_sweeper():
        asset = import_and_wait_synced(own.demo)
        # when
        distribution = services.distribution_create(
            asset_id=asset.pk, subtype="IMMEDIATE", amount_type="FIXED", amount=320_000_001, concept="pipelined"
        )
        done = wait_finished(distribution.pk, timeout=120)
    # then: paid, and the batches shared blocks (nobody waited for a receipt before sending the next)
    assert done.status == Distribution.Status.COMPLETED, done.error
    assert_everyone_paid_once(own, done)
    rows = batch_transactions(done)
    per_block = Counter(int(row.block_number or 0) for row in rows)
    blocks = set(per_block)
    assert len(rows) == 7
    # waiting for each receipt before the next send would take 7 blocks, one batch in each
    assert max(per_block.values()) >= 2, f"one batch per block: {dict(per_block)}"
    assert len(blocks) < len(rows)
    spans = [(row.broadcast_at, row.finished_at) for row in rows if row.broadcast_at and row.finished_at]
    sent, final = min(start for start, _ in spans), max(end for _, end in spans)
    each = [(end - start).total_seconds() for start, end in spans]
    print(  # noqa: T201 - the measurement is the point
        f"\nCHAIN_CONFIRMATIONS={confirmations}: 7 batches in {len(blocks)} blocks; first broadcast to last final "
        f"{(final - sent).total_seconds():.1f}s; broadcast to final per batch mean {sum(each) / len(each):.1f}s "
        f"max {max(each):.1f}s"
    )
