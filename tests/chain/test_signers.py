"""Signers: the local key, and DFNS against a local server speaking DFNS's documented protocol.
A DFNS-signed transaction is broadcast to anvil, directly and through the submission lane."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import transaction
from pytest_django.fixtures import Settings

from chain import abi
from chain.client import ChainClient
from chain.deploy import build_transaction
from chain.errors import RpcConnectionError
from chain.localchain import ANVIL_DEV_KEYS, DeployedContracts
from chain.models import ChainTransaction
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
    return chain_settings


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


def test_dfns_signs_with_a_verified_user_action_and_the_transaction_lands_on_anvil(
    dfns_settings: Settings, fake_dfns: FakeDfns, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given
    signer = get_signer()
    assert isinstance(signer, DfnsSigner)
    data = abi.encode_call("PaymentToken", "approve", [contracts.equity_payout, 12345])
    tx = build_transaction(chain_client, signer, to=contracts.payment_token, data=data)
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
        ("POST", "/wallets/wa-test/signatures"),
        (("GET", f"/wallets/wa-test/signatures/{next(iter(fake_dfns.signatures))}")),
    ]
    _, _, headers, body = fake_dfns.requests[3]
    assert headers["authorization"] == "Bearer sa-token-123"
    assert headers["x-dfns-useraction"].startswith("ua-")
    assert '"kind": "Transaction"' in body


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


def test_the_lane_submits_through_dfns(
    dfns_settings: Settings,
    fake_dfns: FakeDfns,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    db: None,
    clean_redis: None,
) -> None:
    # given
    data = abi.encode_call("PaymentToken", "approve", [contracts.bond_payout, 1])
    with transaction.atomic():
        row = transaction_enqueue(intent_key="dfns-approve", purpose="test_dfns", to=contracts.payment_token, data=data)
    # when
    transaction_submit(transaction_id=str(row.pk))
    status = transaction_confirm(transaction_id=str(row.pk))
    # then
    row.refresh_from_db()
    assert status == ChainTransaction.Status.CONFIRMED
    assert row.sender == fake_dfns.wallet_address
    assert len(fake_dfns.signatures) == 1


def test_an_unavailable_dfns_keeps_the_nonce_for_the_retry(
    dfns_settings: Settings,
    fake_dfns: FakeDfns,
    chain_client: ChainClient,
    contracts: DeployedContracts,
    db: None,
    clean_redis: None,
) -> None:
    # given
    fake_dfns.unavailable = 1
    data = abi.encode_call("PaymentToken", "approve", [contracts.bond_payout, 2])
    with transaction.atomic():
        row = transaction_enqueue(intent_key="dfns-retry", purpose="test_dfns", to=contracts.payment_token, data=data)
    # when
    with pytest.raises(RpcConnectionError):
        transaction_submit(transaction_id=str(row.pk))
    row.refresh_from_db()
    nonce = row.nonce
    transaction_submit(transaction_id=str(row.pk))
    # then
    row.refresh_from_db()
    assert nonce is not None
    assert (row.status, row.nonce) == (ChainTransaction.Status.BROADCAST, nonce)
    assert transaction_confirm(transaction_id=str(row.pk)) == ChainTransaction.Status.CONFIRMED
