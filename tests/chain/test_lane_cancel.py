"""A transaction the node refuses for ever holds its nonce and halts its sender's lane: the sweeper
says so once, and an operator cancels it (a zero-value self-transfer at the same nonce), which lets
every later transaction through. Against anvil, the local Discord and a real Celery worker."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from chain.client import ChainClient
from chain.errors import ChainError
from chain.lane import services as lane_services
from chain.localchain import ANVIL_DEV_KEYS, DeployedContracts
from chain.models import ChainTransaction, SignedVersion
from chain.services import (
    register_transaction_handler,
    transaction_confirm,
    transaction_submit,
    unregister_transaction_handler,
)
from tests.agreements.servers import DiscordServer, field_of
from tests.chain.factories import batch_intent, enqueue_batch
from tests.fixtures.waiting import wait_for
from tests.fixtures.workers import running_worker

Status = ChainTransaction.Status
NOW = datetime.timedelta(0)
# A one-holder batch needs about 221,000 gas (estimate + headroom), a five-holder one about 481,000.
LOWERED_GAS_LIMIT = 300_000

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handled() -> Iterator[list[tuple[str, str]]]:
    calls: list[tuple[str, str]] = []
    register_transaction_handler("test_cancel", lambda row: calls.append((row.intent_key, str(row.status))))
    yield calls
    unregister_transaction_handler("test_cancel")


def _halted_lane(
    chain_client: ChainClient, contracts: DeployedContracts, block_gas_limit: Callable[[int], None]
) -> tuple[ChainTransaction, ChainTransaction]:
    """A five-holder batch signed (its gas estimate passed), then the node's block gas limit lowered
    below its gas limit, so the node refuses it for ever; a one-holder batch queued behind it."""
    stuck = enqueue_batch(contracts, batch_intent(contracts, list(contracts.holders[:5])), purpose="test_cancel")
    lane_services.transaction_prepare(transaction_id=str(stuck.pk))
    block_gas_limit(LOWERED_GAS_LIMIT)
    with pytest.raises(ChainError, match="gas"):
        transaction_submit(transaction_id=str(stuck.pk))
    behind = enqueue_batch(contracts, batch_intent(contracts, [contracts.holders[0]], [10**6]), purpose="test_cancel")
    assert transaction_submit(transaction_id=str(behind.pk)) == Status.BROADCAST
    stuck.refresh_from_db()
    behind.refresh_from_db()
    assert behind.nonce == stuck.nonce + 1  # type: ignore[operator]
    return stuck, behind


def test_a_transaction_stuck_at_its_nonce_blocks_the_next_until_it_is_cancelled(
    chain_client: ChainClient,
    contracts: DeployedContracts,
    block_gas_limit: Callable[[int], None],
    clean_redis: None,
    handled: list[tuple[str, str]],
) -> None:
    # given a transaction the node refuses for ever, and one queued behind it
    stuck, behind = _halted_lane(chain_client, contracts, block_gas_limit)
    sender, nonce = stuck.sender, int(stuck.nonce or 0)
    # ... which waits: neither sending again nor sweeping gets anything mined
    with pytest.raises(ChainError, match="gas"):
        transaction_submit(transaction_id=str(stuck.pk))
    lane_services.transaction_sweep(stale_after=NOW)
    assert chain_client.nonce(sender, "latest") == nonce
    assert chain_client.get_receipt(behind.tx_hash) is None
    assert ChainTransaction.objects.get(pk=behind.pk).status == Status.BROADCAST
    # when an operator cancels the stuck one
    lane_services.transaction_cancel(transaction_id=str(stuck.pk))
    wait_for(lambda: transaction_confirm(transaction_id=str(stuck.pk)) in Status.final(), timeout=15, what="cancel")
    wait_for(lambda: transaction_confirm(transaction_id=str(behind.pk)) in Status.final(), timeout=15, what="next")
    # then the stuck one ends CANCELLED with the cancel version's hash: a zero-value transfer to itself
    stuck.refresh_from_db()
    behind.refresh_from_db()
    cancel = SignedVersion.objects.get(transaction=stuck, is_cancel=True)
    assert (stuck.status, stuck.tx_hash, stuck.nonce) == (Status.CANCELLED, cancel.tx_hash, nonce)
    mined = chain_client.web3.eth.get_transaction(cancel.tx_hash)  # type: ignore[arg-type]
    assert (mined["from"], mined["to"], mined["value"], mined["input"]) == (sender, sender, 0, b"")
    assert not chain_client.batch_executed(contracts.equity_payout, _batch_id(stuck))
    # ... the one behind it is mined, and the purpose's handler saw both outcomes
    assert behind.status == Status.CONFIRMED
    assert chain_client.batch_executed(contracts.equity_payout, _batch_id(behind))
    assert chain_client.nonce(sender, "latest") == nonce + 2
    assert sorted(handled) == sorted([(stuck.intent_key, Status.CANCELLED), (behind.intent_key, Status.CONFIRMED)])


def _batch_id(row: ChainTransaction) -> bytes:
    return bytes.fromhex(row.intent_key.removeprefix("batch:"))


def test_a_cancel_that_comes_after_the_original_was_mined_leaves_the_original_confirmed(
    anvil: object,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    clean_redis: None,
    handled: list[tuple[str, str]],
) -> None:
    # given a transaction mined but not yet recorded (its confirm task has not run)
    row = enqueue_batch(contracts, batch_intent(contracts), purpose="test_cancel")
    assert transaction_submit(transaction_id=str(row.pk)) == Status.BROADCAST
    row.refresh_from_db()
    original = row.tx_hash
    # when an operator cancels it
    cancelled = lane_services.transaction_cancel(transaction_id=str(row.pk))
    # then the original counts: CONFIRMED with its own hash, and no cancel was signed
    assert (cancelled.status, cancelled.tx_hash) == (Status.CONFIRMED, original)
    assert not SignedVersion.objects.filter(transaction=row, is_cancel=True).exists()
    assert handled == [(row.intent_key, Status.CONFIRMED)]


def test_a_halted_lane_is_alerted_once_naming_the_transaction_its_nonce_and_what_to_do(
    chain_client: ChainClient,
    contracts: DeployedContracts,
    block_gas_limit: Callable[[int], None],
    clean_redis: None,
    discord_alerts: DiscordServer,
    settings: Settings,
) -> None:
    # given a lane halted a moment ago: not alerted yet (a busy lane is not a halted one)
    settings.ALERT_RATE_LIMIT_SECONDS = 600
    stuck, _ = _halted_lane(chain_client, contracts, block_gas_limit)
    lane_services.transaction_sweep()
    assert discord_alerts.messages == []
    # ... and still halted longer than CHAIN_LANE_HALTED_AFTER_SECONDS (default 10 minutes)
    eleven_minutes_ago = timezone.now() - datetime.timedelta(minutes=11)
    ChainTransaction.objects.filter(pk=stuck.pk).update(signed_at=eleven_minutes_ago, updated_at=eleven_minutes_ago)
    # when the sweeper runs three more times
    for _ in range(3):
        lane_services.transaction_sweep()
    # then one alert names the transaction, its nonce and sender, and says what to do
    (alert,) = discord_alerts.accepted
    (embed,) = alert["embeds"]
    assert embed["title"] == "Chain lane halted"
    assert field_of(embed, "transaction") == str(stuck.pk)
    assert field_of(embed, "nonce") == str(stuck.nonce)
    assert field_of(embed, "sender") == stuck.sender
    assert "gas" in field_of(embed, "last error")
    assert "Cancel transaction" in embed["description"]
    assert "Replace stuck transaction" in embed["description"]
    assert f"/api/v1/chain/transactions/{stuck.pk}/cancel" in embed["description"]


def test_the_cancel_api_cancels_a_stuck_transaction_once_whatever_the_client_retries(
    chain_client: ChainClient,
    contracts: DeployedContracts,
    block_gas_limit: Callable[[int], None],
    clean_redis: None,
    api_client: APIClient,
    handled: list[tuple[str, str]],
) -> None:
    # given a halted lane
    stuck, behind = _halted_lane(chain_client, contracts, block_gas_limit)
    url = f"/api/v1/chain/transactions/{stuck.pk}/cancel"
    with running_worker():
        # when the client asks to cancel it, then retries with the same key
        first = api_client.post(url, HTTP_IDEMPOTENCY_KEY="cancel-stuck-1")
        again = api_client.post(url, HTTP_IDEMPOTENCY_KEY="cancel-stuck-1")
        # then it is accepted once, and the chain queue cancels it; the one behind goes through
        assert first.status_code == 202, first.json()
        assert (again.status_code, again.headers["Idempotent-Replayed"], again.json()) == (202, "true", first.json())
        assert first.json()["id"] == str(stuck.pk)
        assert first.json()["cancel_requested_at"] is not None

        def both_final() -> bool:
            lane_services.transaction_sweep(stale_after=NOW)
            return ChainTransaction.objects.filter(pk__in=[stuck.pk, behind.pk], status__in=Status.final()).count() == 2

        wait_for(both_final, timeout=60, what="the cancel and the next transaction to be mined")
    stuck.refresh_from_db()
    assert stuck.status == Status.CANCELLED
    assert SignedVersion.objects.filter(transaction=stuck, is_cancel=True).count() == 1
    assert ChainTransaction.objects.get(pk=behind.pk).status == Status.CONFIRMED
    body = api_client.get(f"/api/v1/chain/transactions/{stuck.pk}").json()
    assert (body["status"], body["tx_hash"]) == ("CANCELLED", stuck.tx_hash)
    assert [v["is_cancel"] for v in body["versions"]] == [True, False]


def test_cancelling_what_cannot_be_cancelled_is_a_4xx_that_changes_nothing(
    chain_client: ChainClient,
    contracts: DeployedContracts,
    clean_redis: None,
    api_client: APIClient,
    anonymous_client: APIClient,
) -> None:
    # given a confirmed transaction
    row = enqueue_batch(contracts, batch_intent(contracts), purpose="test_cancel")
    transaction_submit(transaction_id=str(row.pk))
    assert transaction_confirm(transaction_id=str(row.pk)) == Status.CONFIRMED
    url = f"/api/v1/chain/transactions/{row.pk}/cancel"
    # when / then
    refused = api_client.post(url, HTTP_IDEMPOTENCY_KEY="cancel-confirmed")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "only a transaction that holds a nonce and is not mined yet can be cancelled (this one is CONFIRMED)"
    )
    assert api_client.post("/api/v1/chain/transactions/not-a-uuid/cancel").status_code == 404
    assert api_client.post(f"/api/v1/chain/transactions/{row.pk.hex[::-1]}/cancel").status_code == 404
    assert anonymous_client.post(url).status_code == 401
    row.refresh_from_db()
    assert (row.status, row.cancel_requested_at) == (Status.CONFIRMED, None)
    assert SignedVersion.objects.filter(transaction=row).count() == 1


def test_a_cancel_the_configured_signer_cannot_sign_is_refused_and_dropped(
    chain_settings: Settings,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    block_gas_limit: Callable[[int], None],
    clean_redis: None,
) -> None:
    # given a halted lane whose stuck transaction was signed by the key used before a key change
    stuck, _ = _halted_lane(chain_client, contracts, block_gas_limit)
    lane_services.transaction_cancel_request(transaction_id=str(stuck.pk))
    chain_settings.CHAIN_SIGNER_PRIVATE_KEY = ANVIL_DEV_KEYS[1]
    # when the chain queue tries to cancel it
    with pytest.raises(lane_services.CancelRefused, match="cannot cancel it"):
        lane_services.transaction_cancel(transaction_id=str(stuck.pk))
    # then nothing was signed, the request is dropped (the sweeper does not retry it) and the row says why
    stuck.refresh_from_db()
    assert (stuck.status, stuck.cancel_requested_at) == (Status.SIGNED, None)
    assert stuck.error.startswith(f"not cancelled: signed by {stuck.sender}")
    assert not SignedVersion.objects.filter(transaction=stuck, is_cancel=True).exists()
    assert lane_services.transaction_sweep(stale_after=NOW).cancels_resent == 0
