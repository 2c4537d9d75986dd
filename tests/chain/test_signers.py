"""Signers: the local key, and DFNS against a local server speaking DFNS's documented protocol
(the Keys API: `POST /keys/{keyId}/signatures`, then `GET` it while it is pending).
A DFNS-signed transaction is broadcast to anvil, directly and through the submission lane; DFNS
being slow, unavailable, rate limited or refusing is either retried (transient, same nonce) or
final (permanent, with DFNS's reason)."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import transaction
from pytest_django.fixtures import Settings

from chain import abi
from chain.client import ChainClient
from chain.deploy import build_transaction
from chain.errors import PermanentChainError, TransientChainError
from chain.lane.models import SignedVersion
from chain.lane.services import transaction_cancel
from chain.localchain import ANVIL_DEV_KEYS, DeployedContracts
from chain.models import ChainTransaction
from chain.selectors import halted_lanes
from chain.services import transaction_confirm, transaction_enqueue, transaction_submit
from chain.signers import DfnsSigner, LocalKeySigner, SignerError, get_signer, recover_sender, serialize_unsigned
from tests.chain.fake_dfns import FakeDfns, decode_unsigned_eip1559

WALLET_KEY = ANVIL_DEV_KEYS[2]  # a funded anvil account plays the custodial wallet


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def credential_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def fake_dfns(credential_key: ec.EllipticCurvePrivateKey) -> Iterator[FakeDfns]:
    fake = FakeDfns(
        token="sa-token-123",
        app_id="ap-test",
        app_origin="https://payouts.example",
        credential_id="cr-test",
        credential_public_key=credential_key.public_key(),
        wallet_id="wa-test",
        wallet_private_key=WALLET_KEY,
    ).start()
    yield fake
    fake.stop()


@pytest.fixture
def dfns_settings(
    chain_settings: Settings, fake_dfns: FakeDfns, credential_key: ec.EllipticCurvePrivateKey
) -> Settings:
    chain_settings.CHAIN_SIGNER = "dfns"
    chain_settings.DFNS_BASE_URL = fake_dfns.url
    chain_settings.DFNS_SERVICE_ACCOUNT_AUTHORIZATION_TOKEN = fake_dfns.token
    chain_settings.DFNS_SERVICE_ACCOUNT_CREDENTIAL_ID = fake_dfns.credential_id
    chain_settings.DFNS_SERVICE_ACCOUNT_PRIVATE_KEY = _pem(credential_key)
    chain_settings.DFNS_APP_ID = fake_dfns.app_id
    chain_settings.DFNS_APP_ORIGIN = fake_dfns.app_origin
    chain_settings.DFNS_WALLET_ID = fake_dfns.wallet_id
    chain_settings.DFNS_WALLET_PUBLIC_KEY = ""
    chain_settings.DFNS_SIGNATURE_WAIT_SECONDS = 10
    return chain_settings


def _dfns_signer(**overrides: Any) -> DfnsSigner:
    signer = get_signer()
    assert isinstance(signer, DfnsSigner)
    for name, value in overrides.items():
        setattr(signer, name, value)
    return signer


def _approve_tx(
    chain_client: ChainClient, contracts: DeployedContracts, amount: int, signer: DfnsSigner | None = None
) -> dict[str, Any]:
    data = abi.encode_call("PaymentToken", "approve", [contracts.equity_payout, amount])
    return build_transaction(chain_client, signer or get_signer(), to=contracts.payment_token, data=data)


def _enqueue_approve(contracts: DeployedContracts, intent_key: str, amount: int) -> ChainTransaction:
    data = abi.encode_call("PaymentToken", "approve", [contracts.bond_payout, amount])
    with transaction.atomic():
        return transaction_enqueue(intent_key=intent_key, purpose="test_dfns", to=contracts.payment_token, data=data)


def test_get_signer_follows_chain_signer(chain_settings: Settings) -> None:
    # when
    signer = get_signer()
    # then
    assert isinstance(signer, LocalKeySigner)
    assert signer.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert ANVIL_DEV_KEYS[0][2:] not in repr(signer)
    chain_settings.CHAIN_SIGNER = "vault"
    with pytest.raises(Exception, match="unknown CHAIN_SIGNER"):
        get_signer()


def test_unsigned_serialisation_round_trips(chain_client: ChainClient, deployer: LocalKeySigner) -> None:
    # given
    tx = build_transaction(chain_client, deployer, to=deployer.address, data=b"\x01\x02", value=5)
    # when
    decoded = decode_unsigned_eip1559(serialize_unsigned(tx))
    # then
    assert {key: decoded[key] for key in ("chainId", "nonce", "gas", "value", "data")} == {
        "chainId": tx["chainId"], "nonce": tx["nonce"], "gas": tx["gas"], "value": 5, "data": b"\x01\x02",
    }  # fmt: skip


def test_dfns_signs_through_the_keys_signatures_endpoint_and_the_transaction_lands_on_anvil(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given
    signer = _dfns_signer()
    tx = _approve_tx(chain_client, contracts, 12345, signer)
    # when
    signed = signer.sign_transaction(tx)
    chain_client.send_raw_transaction(signed.raw)
    receipt = chain_client.wait_for_receipt(signed.tx_hash)
    # then
    assert receipt.succeeded
    assert recover_sender(signed.raw) == fake_dfns.wallet_address == signer.address
    paths = [(method, path) for method, path, _, _ in fake_dfns.requests]
    assert paths == [
        ("GET", "/wallets/wa-test"),
        ("POST", "/auth/action/init"),
        ("POST", "/auth/action"),
        ("POST", "/keys/key-test/signatures"),
    ]
    _, _, headers, body = fake_dfns.requests[3]
    assert headers["authorization"] == "Bearer sa-token-123"
    assert headers["x-dfns-useraction"].startswith("ua-")
    request = json.loads(body)
    assert (request["blockchainKind"], request["kind"]) == ("Evm", "Transaction")
    assert decode_unsigned_eip1559(bytes.fromhex(request["transaction"][2:]))["nonce"] == tx["nonce"]
    assert request["externalId"]


def test_dfns_refuses_a_user_action_signed_with_another_key(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, deployer: LocalKeySigner
) -> None:
    # given
    dfns_settings.DFNS_SERVICE_ACCOUNT_PRIVATE_KEY = _pem(ec.generate_private_key(ec.SECP256R1()))
    dfns_settings.DFNS_WALLET_PUBLIC_KEY = (
        "0x" + bytes(__import__("eth_keys").keys.PrivateKey(bytes.fromhex(WALLET_KEY[2:])).public_key.to_bytes()).hex()
    )
    signer = get_signer()
    tx = build_transaction(chain_client, deployer, to=deployer.address, data=b"")
    # when / then
    with pytest.raises(SignerError, match="HTTP 401 invalid signature"):
        signer.sign_transaction(tx)
    assert not fake_dfns.signatures


def test_a_signature_pending_for_a_while_is_polled_until_signed(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given: DFNS answers Pending three times (policy engine, MPC still at work)
    fake_dfns.pending = 3
    signer = _dfns_signer()
    tx = _approve_tx(chain_client, contracts, 7)
    # when
    signed = signer.sign_transaction(tx)
    # then
    (signature_id,) = fake_dfns.signatures
    polls = [path for method, path, _, _ in fake_dfns.requests if method == "GET" and "/signatures/" in path]
    assert polls == [f"/keys/key-test/signatures/{signature_id}"] * 3
    assert fake_dfns.signatures[signature_id]["status"] == "Signed"
    chain_client.send_raw_transaction(signed.raw)
    assert chain_client.wait_for_receipt(signed.tx_hash).succeeded


def test_a_signature_still_pending_past_the_bound_is_transient_and_the_lane_later_signs_the_same_nonce(
    dfns_settings: Settings,
    fake_dfns: FakeDfns,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    db: None,
    clean_redis: None,
) -> None:
    # given: an approval nobody has given yet
    dfns_settings.DFNS_SIGNATURE_WAIT_SECONDS = 1
    fake_dfns.pending = 10**6
    row = _enqueue_approve(contracts, "dfns-pending", 3)
    # when
    started = time.monotonic()
    with pytest.raises(TransientChainError, match="still Pending"):
        transaction_submit(transaction_id=str(row.pk))
    waited = time.monotonic() - started
    row.refresh_from_db()
    nonce = row.nonce
    fake_dfns.pending = 0  # approved meanwhile
    status = transaction_submit(transaction_id=str(row.pk))  # the task's retry, or the sweeper
    # then
    assert waited < 5
    assert nonce is not None
    row.refresh_from_db()
    assert (status, row.nonce) == (ChainTransaction.Status.BROADCAST, nonce)
    assert transaction_confirm(transaction_id=str(row.pk)) == ChainTransaction.Status.CONFIRMED
    # the retry asked for the same transaction under the same externalId: one request at DFNS
    posts = fake_dfns.signature_posts()
    assert len(posts) == 2
    assert posts[0] == posts[1]
    assert len(fake_dfns.signatures) == 1


def test_a_policy_denial_is_final_with_dfns_reason(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given: a DFNS policy with a Block action on this wallet
    fake_dfns.deny = "Policy 'no payouts on Sundays' blocked this activity"
    signer = _dfns_signer()
    tx = _approve_tx(chain_client, contracts, 1)
    # when
    with pytest.raises(PermanentChainError) as raised:
        signer.sign_transaction(tx)
    # then
    assert not isinstance(raised.value, TransientChainError)
    assert "HTTP 403" in str(raised.value)
    assert "no payouts on Sundays" in str(raised.value)
    assert len(fake_dfns.signature_posts()) == 1  # asked once: a refusal is not retried


def test_an_approval_rejected_in_dfns_is_final_with_its_reason(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given: the request waits for an approval, then an approver rejects it
    fake_dfns.pending = 1
    fake_dfns.reject = "rejected by approver us-cfo"
    signer = _dfns_signer()
    tx = _approve_tx(chain_client, contracts, 1)
    # when / then
    with pytest.raises(SignerError, match="Rejected: rejected by approver us-cfo"):
        signer.sign_transaction(tx)


def test_an_unknown_wallet_is_a_final_error(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given
    dfns_settings.DFNS_WALLET_ID = "wa-unknown"
    signer = _dfns_signer()
    # when / then
    with pytest.raises(SignerError, match="HTTP 404 wallet not found"):
        signer.address  # noqa: B018
    assert not fake_dfns.signature_posts()


def test_a_signature_of_another_transaction_is_refused(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given: DFNS (or something between us) answers with another transaction, signed by the wallet
    fake_dfns.tamper = True
    signer = _dfns_signer()
    tx = _approve_tx(chain_client, contracts, 1, signer)
    # when / then
    with pytest.raises(SignerError, match="for another transaction"):
        signer.sign_transaction(tx)


def test_a_503_then_success_signs_once(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given
    fake_dfns.unavailable = 1
    signer = _dfns_signer()
    tx = _approve_tx(chain_client, contracts, 11)
    # when
    signed = signer.sign_transaction(tx)
    # then
    assert len(fake_dfns.signature_posts()) == 2
    assert len(fake_dfns.signatures) == 1
    chain_client.send_raw_transaction(signed.raw)
    assert chain_client.wait_for_receipt(signed.tx_hash).succeeded


def test_a_429_waits_for_retry_after_then_signs(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given
    fake_dfns.rate_limited, fake_dfns.retry_after = 1, "2"
    signer = _dfns_signer()
    tx = _approve_tx(chain_client, contracts, 12)
    # when
    started = time.monotonic()
    signer.sign_transaction(tx)
    # then
    assert time.monotonic() - started >= 2
    assert len(fake_dfns.signature_posts()) == 2
    assert len(fake_dfns.signatures) == 1


def test_a_429_asking_to_wait_past_the_bound_is_transient_at_once(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given
    fake_dfns.rate_limited, fake_dfns.retry_after = 1, "120"
    signer = _dfns_signer()
    tx = _approve_tx(chain_client, contracts, 13)
    # when
    started = time.monotonic()
    with pytest.raises(TransientChainError, match="HTTP 429") as raised:
        signer.sign_transaction(tx)
    # then
    assert time.monotonic() - started < 5
    assert getattr(raised.value, "retry_after", None) == 120


def test_a_dfns_that_does_not_answer_in_time_is_transient(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given
    dfns_settings.DFNS_SIGNATURE_WAIT_SECONDS = 2
    tx = _approve_tx(chain_client, contracts, 14)
    fake_dfns.delay = 1.0
    signer = _dfns_signer(_timeout=0.3)
    # when
    started = time.monotonic()
    with pytest.raises(TransientChainError):
        signer.sign_transaction(tx)
    # then
    assert time.monotonic() - started < 6
    assert not fake_dfns.signatures


def test_the_lane_submits_through_dfns(
    dfns_settings: Settings,
    fake_dfns: FakeDfns,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    db: None,
    clean_redis: None,
) -> None:
    # given
    row = _enqueue_approve(contracts, "dfns-approve", 1)
    # when
    transaction_submit(transaction_id=str(row.pk))
    status = transaction_confirm(transaction_id=str(row.pk))
    # then
    row.refresh_from_db()
    assert status == ChainTransaction.Status.CONFIRMED
    assert row.sender == fake_dfns.wallet_address
    assert len(fake_dfns.signatures) == 1


def test_a_dfns_unavailable_past_the_bound_keeps_the_nonce_for_the_retry(
    dfns_settings: Settings,
    fake_dfns: FakeDfns,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    db: None,
    clean_redis: None,
) -> None:
    # given
    dfns_settings.DFNS_SIGNATURE_WAIT_SECONDS = 1
    fake_dfns.unavailable = 10**6
    row = _enqueue_approve(contracts, "dfns-retry", 2)
    # when
    with pytest.raises(TransientChainError, match="HTTP 503"):
        transaction_submit(transaction_id=str(row.pk))
    row.refresh_from_db()
    nonce = row.nonce
    fake_dfns.unavailable = 0
    transaction_submit(transaction_id=str(row.pk))
    # then
    row.refresh_from_db()
    assert nonce is not None
    assert (row.status, row.nonce) == (ChainTransaction.Status.BROADCAST, nonce)
    assert transaction_confirm(transaction_id=str(row.pk)) == ChainTransaction.Status.CONFIRMED


def test_a_transaction_its_signer_refuses_for_good_is_named_as_the_halted_lane_and_its_cancel_frees_the_nonce(
    dfns_settings: Settings,
    fake_dfns: FakeDfns,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    db: None,
    clean_redis: None,
) -> None:
    # given a transaction that took a nonce, then a DFNS policy refused to sign it (for good)
    refused = _enqueue_approve(contracts, "dfns-refused", 1)
    fake_dfns.deny = "policy: approvals above the limit need a human"
    with pytest.raises(SignerError):
        transaction_submit(transaction_id=str(refused.pk))
    refused.refresh_from_db()
    assert (refused.status, refused.nonce is not None) == (ChainTransaction.Status.PENDING, True)
    assert "approvals above the limit need a human" in refused.error
    # and the next transaction of the same sender, signed and sent behind the gap it leaves
    fake_dfns.deny = ""
    behind = _enqueue_approve(contracts, "dfns-behind", 2)
    transaction_submit(transaction_id=str(behind.pk))
    assert transaction_confirm(transaction_id=str(behind.pk)) == ChainTransaction.Status.BROADCAST
    # when the sweeper looks for halted lanes, then it names the refused one, at the lower nonce
    (halted,) = halted_lanes(older_than=datetime.timedelta(0))
    assert (halted.transaction.pk, halted.waiting_behind) == (refused.pk, 1)
    # when an operator cancels it (a zero-value self-transfer at its nonce, which the policy allows)
    transaction_cancel(transaction_id=str(refused.pk))
    # then the nonce is filled, the one behind it is mined, and the refused intent is never signed
    assert transaction_confirm(transaction_id=str(refused.pk)) == ChainTransaction.Status.CANCELLED
    assert transaction_confirm(transaction_id=str(behind.pk)) == ChainTransaction.Status.CONFIRMED
    assert [v.is_cancel for v in SignedVersion.objects.filter(transaction_id=refused.pk)] == [True]
