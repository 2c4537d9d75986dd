"""Transaction signers behind one interface: a local private key, or DFNS (custodial, REST API).

`get_signer()` picks one from settings (`CHAIN_SIGNER`: `local` or `dfns`). A signer only signs:
it never broadcasts, so the submission lane can store the signed bytes before anything is sent.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import requests
import rlp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from django.conf import settings
from eth_account import Account
from eth_account._utils.transaction_utils import transaction_rpc_to_rlp_structure
from eth_account.typed_transactions.dynamic_fee_transaction import DynamicFeeTransaction
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_keys.datatypes import PublicKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from chain.errors import ChainError, PermanentChainError, RpcConnectionError, RpcTimeout

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedTransaction:
    raw: bytes
    tx_hash: str  # 0x-prefixed lowercase hex


class Signer(Protocol):
    @property
    def address(self) -> str: ...

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction: ...


class SignerError(PermanentChainError):
    """The signer refused or produced an unusable signature."""


def signed_from_raw(raw: bytes) -> SignedTransaction:
    return SignedTransaction(raw=raw, tx_hash="0x" + keccak(raw).hex())


def recover_sender(raw: bytes) -> str:
    """The address that signed a raw transaction."""
    return to_checksum_address(Account.recover_transaction(raw))


# --- local key ------------------------------------------------------------------------------------
class LocalKeySigner:
    """Signs with a private key held in this process (`CHAIN_SIGNER_PRIVATE_KEY`)."""

    def __init__(self, private_key: str) -> None:
        if not private_key:
            raise ValueError("no private key configured (CHAIN_SIGNER_PRIVATE_KEY)")
        self._account = Account.from_key(private_key)

    @property
    def address(self) -> str:
        return to_checksum_address(self._account.address)

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        signed = self._account.sign_transaction(tx)
        return signed_from_raw(bytes(signed.raw_transaction))

    def __repr__(self) -> str:  # never show the key
        return f"LocalKeySigner(address={self.address})"


# --- EIP-1559 serialisation (what DFNS signs) -----------------------------------------------------
def _typed_dict(tx: dict[str, Any]) -> dict[str, Any]:
    prepared = {key: value for key, value in tx.items() if key not in ("from",)}
    prepared.setdefault("type", 2)
    prepared.setdefault("accessList", [])
    prepared.setdefault("value", 0)
    prepared.setdefault("data", b"")
    if int(prepared["type"]) != 2:
        raise SignerError("only EIP-1559 (type 2) transactions are signed")
    return prepared


def serialize_unsigned(tx: dict[str, Any]) -> bytes:
    """`0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to, value, data, accessList])`."""
    typed = DynamicFeeTransaction.from_dict(_typed_dict(tx))
    structured = transaction_rpc_to_rlp_structure(typed.dictionary)
    serializer = DynamicFeeTransaction._unsigned_transaction_serializer
    encoded: bytes = rlp.encode(serializer.from_dict(structured))  # type: ignore[attr-defined]
    return b"\x02" + encoded


def assemble_signed(tx: dict[str, Any], *, recid: int, r: int, s: int) -> bytes:
    """The signed raw transaction from its fields and a (recid, r, s) signature."""
    fields = {**_typed_dict(tx), "v": recid, "r": r, "s": s}
    return bytes(TypedTransaction.from_dict(fields).encode())


# --- DFNS -----------------------------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_challenge(private_key_pem: str, data: bytes) -> bytes:
    """Sign DFNS client data with the service account credential's key (EC P-256, Ed25519 or RSA)."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, PKCS1v15(), hashes.SHA256())
    raise SignerError("unsupported DFNS credential key type")


class DfnsSigner:
    """Signs through DFNS: a wallet's "generate signature" endpoint with a user-action signature.

    Flow per transaction (DFNS REST API, service account):
      1. `POST /auth/action/init` with the exact body, method and path of the request to sign;
      2. sign the challenge (client data JSON) with the credential's private key;
      3. `POST /auth/action` with the assertion, receiving a user-action token;
      4. `POST /wallets/{walletId}/signatures` (`kind: Transaction`, unsigned serialised tx) with
         headers `Authorization: Bearer <service account token>` and `X-DFNS-USERACTION`;
      5. poll `GET /wallets/{walletId}/signatures/{id}` while the request is pending (policies).
    The signed transaction's sender is checked against the wallet's address before it is used.
    """

    def __init__(
        self,
        *,
        base_url: str,
        auth_token: str,
        credential_id: str,
        credential_private_key: str,
        wallet_id: str,
        app_id: str = "",
        app_origin: str = "",
        wallet_public_key: str = "",
        timeout: float = 10.0,
        pending_timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        missing = [
            name
            for name, value in (
                ("DFNS_SERVICE_ACCOUNT_AUTHORIZATION_TOKEN", auth_token),
                ("DFNS_SERVICE_ACCOUNT_CREDENTIAL_ID", credential_id),
                ("DFNS_SERVICE_ACCOUNT_PRIVATE_KEY", credential_private_key),
                ("DFNS_WALLET_ID", wallet_id),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"DFNS signer is not configured: {', '.join(missing)}")
        self.base_url = base_url.rstrip("/")
        self._auth_token = auth_token
        self._credential_id = credential_id
        self._credential_private_key = credential_private_key
        self.wallet_id = wallet_id
        self.app_id = app_id
        self.app_origin = app_origin
        self._timeout = timeout
        self._pending_timeout = pending_timeout
        self._session = session or requests.Session()
        self._address = address_from_public_key(wallet_public_key) if wallet_public_key else None

    def __repr__(self) -> str:
        return f"DfnsSigner(wallet_id={self.wallet_id})"

    @classmethod
    def from_settings(cls) -> DfnsSigner:
        return cls(
            base_url=settings.DFNS_BASE_URL,
            auth_token=settings.DFNS_SERVICE_ACCOUNT_AUTHORIZATION_TOKEN,
            credential_id=settings.DFNS_SERVICE_ACCOUNT_CREDENTIAL_ID,
            credential_private_key=settings.DFNS_SERVICE_ACCOUNT_PRIVATE_KEY,
            wallet_id=settings.DFNS_WALLET_ID,
            app_id=settings.DFNS_APP_ID,
            app_origin=settings.DFNS_APP_ORIGIN,
            wallet_public_key=settings.DFNS_WALLET_PUBLIC_KEY,
        )

    # --- HTTP ---------------------------------------------------------------------------------
    def _headers(self, user_action: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._auth_token}", "Content-Type": "application/json"}
        if self.app_id:
            headers["X-DFNS-APPID"] = self.app_id
        if user_action:
            headers["X-DFNS-USERACTION"] = user_action
        return headers

    def _request(self, method: str, path: str, body: str | None = None, user_action: str | None = None) -> Any:
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                data=body.encode() if body is not None else None,
                headers=self._headers(user_action),
                timeout=self._timeout,
            )
        except requests.Timeout as exc:
            raise RpcTimeout(f"DFNS {method} {path}") from exc
        except requests.ConnectionError as exc:
            raise RpcConnectionError(f"DFNS {method} {path}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise RpcConnectionError(f"DFNS {method} {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise SignerError(f"DFNS {method} {path}: HTTP {response.status_code} {_error_message(response)}")
        return response.json()

    def _user_action(self, method: str, path: str, body: str) -> str:
        challenge = self._request(
            "POST",
            "/auth/action/init",
            json.dumps(
                {
                    "userActionPayload": body,
                    "userActionHttpMethod": method,
                    "userActionHttpPath": path,
                    "userActionServerKind": "Api",
                }
            ),
        )
        client_data = json.dumps(
            {
                "type": "key.get",
                "challenge": challenge["challenge"],
                "origin": self.app_origin,
                "crossOrigin": False,
            },
            separators=(",", ":"),
        ).encode()
        signature = sign_challenge(self._credential_private_key, client_data)
        completed = self._request(
            "POST",
            "/auth/action",
            json.dumps(
                {
                    "challengeIdentifier": challenge["challengeIdentifier"],
                    "firstFactor": {
                        "kind": "Key",
                        "credentialAssertion": {
                            "credId": self._credential_id,
                            "clientData": _b64url(client_data),
                            "signature": _b64url(signature),
                        },
                    },
                }
            ),
        )
        return str(completed["userAction"])

    # --- Signer -------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        if self._address is None:
            wallet = self._request("GET", f"/wallets/{self.wallet_id}")
            self._address = to_checksum_address(wallet["address"])
        return self._address

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        path = f"/wallets/{self.wallet_id}/signatures"
        body = json.dumps({"kind": "Transaction", "transaction": "0x" + serialize_unsigned(tx).hex()})
        user_action = self._user_action("POST", path, body)
        result = self._request("POST", path, body, user_action=user_action)
        deadline = time.monotonic() + self._pending_timeout
        while result.get("status") not in ("Signed", "Confirmed", "Broadcasted"):
            if result.get("status") in ("Rejected", "Failed"):
                raise SignerError(f"DFNS signature {result.get('id')} {result['status']}: {result.get('reason', '')}")
            if time.monotonic() > deadline:
                raise RpcTimeout(f"DFNS signature {result.get('id')} still {result.get('status')}")
            time.sleep(1)
            result = self._request("GET", f"{path}/{result['id']}")
        raw = self._signed_raw(tx, result)
        if recover_sender(raw) != self.address:
            raise SignerError("DFNS returned a transaction signed by another key")
        return signed_from_raw(raw)

    @staticmethod
    def _signed_raw(tx: dict[str, Any], result: dict[str, Any]) -> bytes:
        if result.get("signedData"):
            return bytes(HexBytes(result["signedData"]))
        signature = result.get("signature") or {}
        try:
            return assemble_signed(
                tx, recid=int(signature["recid"]), r=int(signature["r"], 16), s=int(signature["s"], 16)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SignerError("DFNS answered without a usable signature") from exc


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))[:200]
    return str(body.get("message", ""))[:200] if isinstance(body, dict) else ""


def address_from_public_key(public_key_hex: str) -> str:
    """Address of a secp256k1 public key given in hex (compressed or uncompressed)."""
    raw = bytes(HexBytes(public_key_hex))
    if len(raw) == 33:
        key = PublicKey.from_compressed_bytes(raw)
    elif len(raw) == 65:
        key = PublicKey(raw[1:])
    elif len(raw) == 64:
        key = PublicKey(raw)
    else:
        raise ValueError("DFNS_WALLET_PUBLIC_KEY is not a secp256k1 public key")
    return to_checksum_address(key.to_checksum_address())


def get_signer() -> Signer:
    """The signer configured by `CHAIN_SIGNER` (`local` or `dfns`)."""
    kind = settings.CHAIN_SIGNER.lower()
    if kind == "local":
        return LocalKeySigner(settings.CHAIN_SIGNER_PRIVATE_KEY)
    if kind == "dfns":
        return DfnsSigner.from_settings()
    raise ChainError(f"unknown CHAIN_SIGNER {settings.CHAIN_SIGNER!r}: use local or dfns")


__all__ = [
    "DfnsSigner",
    "LocalKeySigner",
    "SignedTransaction",
    "Signer",
    "SignerError",
    "get_signer",
]
