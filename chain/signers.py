"""Transaction signers behind one interface: a local private key, or DFNS (custodial, REST API).

`get_signer()` picks one from settings (`CHAIN_SIGNER`: `local` or `dfns`). A signer only signs:
it never broadcasts, so the submission lane can store the signed bytes before anything is sent.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

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

from chain.errors import ChainError, PermanentChainError, RpcConnectionError, RpcTimeout, TransientChainError

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


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


class DfnsUnavailable(RpcConnectionError):
    """DFNS answered 5xx, 408 or 429: worth asking again, after `retry_after` seconds if DFNS said so."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DfnsSignaturePending(RpcTimeout):
    """The signature request is still Pending (an approval, the MPC cluster) past the wait bound.

    Transient: the lane keeps the transaction's nonce and asks again later; the same unsigned
    transaction carries the same `externalId`, so DFNS answers with the same request, not a new one.
    """


# DFNS signature request statuses (Keys API, SignatureRequest.status).
SIGNED_STATUSES = frozenset({"Signed", "Confirmed"})
WAITING_STATUSES = frozenset({"Pending", "Executing"})
REFUSED_STATUSES = frozenset({"Failed", "Rejected"})
MAX_TRIES = 3  # calls per request while DFNS is unavailable, rate limited or slow
FIRST_RETRY_DELAY = 0.5  # seconds, doubled each try unless DFNS sends Retry-After
MAX_POLLS = 30
FIRST_POLL_DELAY = 0.25  # seconds between two looks at a pending request, doubled up to the max
MAX_POLL_DELAY = 2.0


class DfnsSigner:
    """Signs through DFNS's Keys API ("Generate Signature") with a user-action signature.

    Flow per transaction (DFNS REST API, service account; docs.dfns.co "Generate Signature"):
      1. `GET /wallets/{walletId}` once: the wallet's address and its signing key `signingKey.id`;
      2. `POST /auth/action/init` with the exact body, method and path of the request to sign,
         sign the challenge (client data JSON) with the credential's private key, and
         `POST /auth/action` with the assertion, receiving a user-action token;
      3. `POST /keys/{keyId}/signatures` (`blockchainKind: Evm`, `kind: Transaction`, the unsigned
         serialised EIP-1559 transaction, `externalId` derived from it) with
         `Authorization: Bearer <service account token>` and `X-DFNS-USERACTION`;
      4. while the request is `Pending`/`Executing` (policies, approvals), poll
         `GET /keys/{keyId}/signatures/{signatureId}` until `Signed`.
    Everything in one call stays within `signature_wait` seconds (keep it under the lane lock's
    timeout): DFNS unavailable (5xx), rate limiting (429, Retry-After honoured), timeouts and a
    request still pending at the bound raise transient errors, and the lane retries later with the
    same nonce; refusals (4xx: policy block, invalid request, unknown key; `Rejected`, `Failed`)
    raise `SignerError`, final. The signed transaction must be ours, signed by the wallet's key.
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
        signature_wait: float = 15.0,
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
        self.signature_wait = signature_wait
        self._session = session or requests.Session()
        self._address = address_from_public_key(wallet_public_key) if wallet_public_key else None
        self._key_id: str | None = None

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
            signature_wait=settings.DFNS_SIGNATURE_WAIT_SECONDS,
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
            raise RpcTimeout(f"DFNS {method} {path}: no answer within {self._timeout:g}s") from exc
        except requests.ConnectionError as exc:
            raise RpcConnectionError(f"DFNS {method} {path}: unreachable") from exc
        status = response.status_code
        if status >= 500 or status in (408, 429):
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise DfnsUnavailable(
                f"DFNS {method} {path}: HTTP {status} {_error_message(response)}".rstrip(), retry_after=retry_after
            )
        if status >= 400:
            # 400 invalid request, 401 bad credentials, 403 blocked by a policy or not permitted,
            # 404 unknown wallet or key, 409 externalId conflict: asking again changes nothing.
            raise SignerError(f"DFNS {method} {path}: HTTP {status} {_error_message(response)}".rstrip())
        try:
            return response.json()
        except ValueError as exc:
            raise RpcConnectionError(f"DFNS {method} {path}: HTTP {status} with a body that is not JSON") from exc

    def _retrying(self, call: Callable[[], _T], deadline: float) -> _T:
        """`call()`, asked again while DFNS is unavailable, rate limited or slow, within the bound."""
        delay = FIRST_RETRY_DELAY
        for attempt in range(1, MAX_TRIES + 1):
            try:
                return call()
            except TransientChainError as exc:
                retry_after = exc.retry_after if isinstance(exc, DfnsUnavailable) else None
                wait = delay if retry_after is None else retry_after
                if attempt == MAX_TRIES or time.monotonic() + wait > deadline:
                    raise
                logger.warning(
                    "dfns transient error, asking again wallet=%s wait=%.1fs error=%s", self.wallet_id, wait, exc
                )
                time.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

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

    # --- the wallet and its key ---------------------------------------------------------------
    def _load_wallet(self, deadline: float) -> tuple[str, str]:
        """Read the wallet once: its signing key id and (unless configured) its address."""
        wallet = self._retrying(lambda: self._request("GET", f"/wallets/{self.wallet_id}"), deadline)
        try:
            key_id = str(wallet["signingKey"]["id"])
            address = to_checksum_address(wallet["address"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SignerError(f"DFNS wallet {self.wallet_id} has no signing key or EVM address") from exc
        self._key_id = key_id
        if self._address is None:
            self._address = address
        return key_id, self._address

    @property
    def address(self) -> str:
        if self._address is not None:
            return self._address
        return self._load_wallet(time.monotonic() + self.signature_wait)[1]

    def key_id(self, deadline: float) -> str:
        """The wallet's signing key (`signingKey.id`), the key the Keys API signs with."""
        return self._key_id if self._key_id is not None else self._load_wallet(deadline)[0]

    # --- Signer -------------------------------------------------------------------------------
    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        deadline = time.monotonic() + self.signature_wait
        unsigned = serialize_unsigned(tx)
        path = f"/keys/{self.key_id(deadline)}/signatures"
        body = json.dumps(
            {
                "blockchainKind": "Evm",
                "kind": "Transaction",
                "transaction": "0x" + unsigned.hex(),
                # One transaction, one signature request: a retry (lost answer, pending past the
                # bound) gets the existing request back instead of a second one to approve.
                "externalId": external_id(unsigned),
            }
        )

        def create() -> dict[str, Any]:
            # A user-action token is good for one request: each try signs a fresh challenge.
            return _signature_request(
                self._request("POST", path, body, user_action=self._user_action("POST", path, body))
            )

        result = self._await_signed(path, self._retrying(create, deadline), deadline)
        raw = self._signed_raw(tx, result)
        if keccak(unsigned) != _signing_hash(raw):
            raise SignerError(f"DFNS signature {result['id']} is for another transaction")
        if recover_sender(raw) != self.address:
            raise SignerError("DFNS returned a transaction signed by another key")
        logger.info("dfns signed wallet=%s signature=%s", self.wallet_id, result["id"])
        return signed_from_raw(raw)

    def _await_signed(self, path: str, result: dict[str, Any], deadline: float) -> dict[str, Any]:
        delay, polls = FIRST_POLL_DELAY, 0
        while True:
            status, signature_id = result["status"], result["id"]
            if status in SIGNED_STATUSES:
                return result
            if status in REFUSED_STATUSES:
                raise SignerError(
                    f"DFNS signature {signature_id} {status}: {result.get('reason') or 'no reason given'}"
                )
            if status not in WAITING_STATUSES:
                raise SignerError(f"DFNS signature {signature_id} has an unknown status {status!r}")
            if polls >= MAX_POLLS or time.monotonic() + delay > deadline:
                raise DfnsSignaturePending(
                    f"DFNS signature {signature_id} still {status} after {self.signature_wait:g}s; "
                    "the transaction keeps its nonce and asks again later"
                )
            time.sleep(delay)
            delay, polls = min(delay * 2, MAX_POLL_DELAY), polls + 1
            result = self._retrying(functools.partial(self._get_signature, f"{path}/{signature_id}"), deadline)

    def _get_signature(self, url: str) -> dict[str, Any]:
        return _signature_request(self._request("GET", url))

    @staticmethod
    def _signed_raw(tx: dict[str, Any], result: dict[str, Any]) -> bytes:
        signature = result.get("signature") or {}
        try:
            if result.get("signedData"):
                return bytes(HexBytes(result["signedData"]))
            return assemble_signed(
                tx, recid=int(signature["recid"]), r=int(signature["r"], 16), s=int(signature["s"], 16)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SignerError("DFNS answered without a usable signature") from exc


def external_id(unsigned: bytes) -> str:
    """The `externalId` of a transaction's signature request: the same transaction, the same id."""
    return "tx-" + keccak(unsigned).hex()[:32]


def _signature_request(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), str) or "status" not in answer:
        raise RpcConnectionError("DFNS answered a signature request without an id and a status")
    return answer


def _signing_hash(raw: bytes) -> bytes:
    try:
        return bytes(TypedTransaction.from_bytes(HexBytes(raw)).hash())
    except (ValueError, TypeError, rlp.exceptions.RLPException) as exc:
        raise SignerError("DFNS returned signed data that is not an EIP-1559 transaction") from exc


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(tz=datetime.UTC)).total_seconds())


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
    "DfnsSignaturePending",
    "DfnsSigner",
    "DfnsUnavailable",
    "LocalKeySigner",
    "SignedTransaction",
    "Signer",
    "SignerError",
    "get_signer",
]
