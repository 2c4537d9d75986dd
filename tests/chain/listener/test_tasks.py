"""Beat's fan-out reaches every enabled listener through a real worker; one poller per stream."""

from __future__ import annotations

import pytest
from celery.worker import WorkController
from pytest_django.fixtures import Settings

from chain import tasks
from chain.client import ChainClient
from chain.listener import engine, listener_ensure
from chain.localchain import DeployedContracts
from chain.models import ChainEvent
from chain.signers import LocalKeySigner
from config.celery_app import declared_schedules
from config.locks import SKIPPED, redis_lock
from tests.chain.listener.actions import pay_batch
from tests.chain.listener.emitter import deploy_emitter, emit
from tests.chain.listener.helpers import chain_log_keys, chain_tx_keys, head, stored_keys
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.chain


def test_the_periodic_fan_out_polls_every_enabled_listener_through_a_real_worker(
    celery_worker: WorkController,
    chain_client: ChainClient,
    deployer: LocalKeySigner,
    contracts: DeployedContracts,
    listener_settings: Settings,
) -> None:
    # given activity on chain, an RPC listener, a Mirror Node listener and a disabled listener
    pay_batch(
        chain_client, deployer, contracts.equity_payout, distribution="d", batch="b", holders=list(contracts.holders)
    )
    rpc_listener = listener_ensure(
        name="payout-rpc", contract_address=contracts.equity_payout, abi_name="PayoutContract"
    )
    mirror_listener = listener_ensure(
        name="token-mirror", contract_address=contracts.equity_token, abi_name="AssetToken", source="MIRROR_NODE"
    )
    disabled = listener_ensure(name="bond", contract_address=contracts.bond_token, abi_name="AssetToken")
    disabled.enabled = False
    disabled.save(update_fields=["enabled"])
    # when beat fires the fan-out
    fanned_out = tasks.poll_listeners_task.delay().get(timeout=30)
    # then each enabled listener was polled by the worker, to the end of its stream
    assert fanned_out == 2
    payout_logs = chain_log_keys(contracts.rpc_url, contracts.equity_payout)
    token_logs = chain_tx_keys(contracts.rpc_url, contracts.equity_token)
    wait_for(lambda: stored_keys(rpc_listener) == payout_logs and stored_keys(mirror_listener) == token_logs)
    assert not ChainEvent.objects.filter(listener=disabled).exists()


def test_a_listener_already_being_polled_is_skipped(
    celery_worker: WorkController, contracts: DeployedContracts, listener_settings: Settings
) -> None:
    # given a poller holds the listener's lock
    listener = listener_ensure(name="payout", contract_address=contracts.equity_payout, abi_name="PayoutContract")
    with redis_lock(f"chain.listener:{listener.pk}", timeout=60):
        # when another poll of it arrives
        outcome = tasks.poll_listener_task.delay(listener.pk).get(timeout=30)
    # then it did nothing
    assert outcome == SKIPPED
    assert not ChainEvent.objects.filter(listener=listener).exists()
    # and once free, the next poll works
    assert "stored=" in tasks.poll_listener_task.delay(listener.pk).get(timeout=30)


def test_the_fan_out_is_declared_with_the_polling_interval(settings: Settings) -> None:
    # given
    settings.BLOCKCHAIN_POLLING_INTERVAL = 15_000
    # when
    schedule = declared_schedules()["chain-poll-listeners"]
    # then
    assert (schedule.task, schedule.every_seconds) == ("chain.tasks.poll_listeners_task", 15)


def test_a_backlog_longer_than_one_poll_is_drained_by_follow_up_polls(
    celery_worker: WorkController, anvil_rpc_url: str, listener_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 6 blocks of logs, read one block per page, at most 2 pages per poll
    monkeypatch.setattr(engine, "MAX_PAGES_PER_POLL", 2)
    emitter = deploy_emitter(anvil_rpc_url)
    start = head(anvil_rpc_url)
    for _ in range(6):
        emit(anvil_rpc_url, emitter, "0x" + "ee" * 32)
    listener = listener_ensure(
        name="backlog", contract_address=emitter, abi_name="AssetToken", start_block=start, max_block_range=1
    )
    # when one poll is sent
    first = tasks.poll_listener_task.delay(listener.pk).get(timeout=30)
    # then it stopped early and the polls it enqueued read the rest
    assert "more=True" in first
    wait_for(lambda: stored_keys(listener) == chain_log_keys(anvil_rpc_url, emitter))
