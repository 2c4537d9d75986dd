"""A local DFNS API for tests: the documented request shapes, user-action signing verified with
the service account credential's public key, and real secp256k1 signatures from a test wallet key.

Endpoints (DFNS Keys API, docs.dfns.co "Generate Signature" / "Get Signature"):
- `POST /auth/action/init`, `POST /auth/action`: the user-action signing challenge and its answer;
- `GET /wallets/{walletId}`: the wallet, its address and its `signingKey.id`;
- `POST /keys/{keyId}/signatures` (`blockchainKind: Evm`, `kind: Transaction`, the unsigned
  serialised transaction, optional `externalId`): a signature request, `Pending` or `Signed`;
- `GET /keys/{keyId}/signatures/{signatureId}`: that request now.
The deprecated `POST /wallets/{walletId}/signatures` is not served (404). Every request needs
`Authorization: Bearer <token>` and the app id header; a signature request needs an
`X-DFNS-USERACTION` token bound to its exact method, path and body. An `externalId` seen before
answers the request it created (same body) or 409 (another body), as DFNS's idempotency page says.
Errors have DFNS's shape `{"error": {"status", "message"}}`.

Fault modes, set on the instance by a test: `pending` (answer `Pending` that many times before
`Signed`), `unavailable` (503 that many signature requests), `rate_limited` (429 with
`Retry-After: retry_after`), `deny` (a policy blocks every signature request: 403 with this
message), `reject` (the approval is rejected: the request ends `Rejected` with this reason),
`delay` (seconds every answer takes), `tamper` (sign another transaction: the next nonce).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import rlp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils.address import to_checksum_address


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def decode_unsigned_eip1559(serialized: bytes) -> dict[str, Any]:
    if serialized[:1] != b"\x02":
        raise ValueError("not an EIP-1559 transaction")
    chain_id, nonce, tip, max_fee, gas, to, value, data, access_list = rlp.decode(serialized[1:])
    if access_list:
        raise ValueError("access lists are not expected here")
    return {
        "type": 2, "chainId": _int(chain_id), "nonce": _int(nonce), "maxPriorityFeePerGas": _int(tip),
        "maxFeePerGas": _int(max_fee), "gas": _int(gas), "to": to_checksum_address(to), "value": _int(value),
        "data": data, "accessList": [],
    }  # fmt: skip


@dataclass
class FakeDfns:
    token: str
    app_id: str
    app_origin: str
    credential_id: str
    credential_public_key: ec.EllipticCurvePublicKey
    wallet_id: str
    wallet_private_key: str
    key_id: str = "key-test"
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)
    challenges: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)
    user_actions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    signatures: dict[str, dict[str, Any]] = field(default_factory=dict)
    external_ids: dict[str, tuple[str, str]] = field(default_factory=dict)  # externalId -> (body, signature id)
    pending: int = 0
    unavailable: int = 0
    rate_limited: int = 0
    retry_after: str = "1"
    deny: str = ""
    reject: str = ""
    delay: float = 0.0
    tamper: bool = False
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def wallet_address(self) -> str:
        return str(Account.from_key(self.wallet_private_key).address)

    def signature_posts(self) -> list[str]:
        """Bodies of every signature request received (answered or not)."""
        path = f"/keys/{self.key_id}/signatures"
        return [body for method, request_path, _, body in self.requests if (method, request_path) == ("POST", path)]

    def start(self) -> FakeDfns:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- protocol -----------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)).decode()
        headers = {key.lower(): value for key, value in handler.headers.items()}
        self.requests.append((method, handler.path, headers, body))
        if self.delay:
            time.sleep(self.delay)
        extra: dict[str, str] = {}
        try:
            with self._lock:
                status, answer = self._route(method, handler.path, headers, body)
        except (KeyError, ValueError, TypeError) as exc:
            status, answer = 400, _error(400, f"bad request: {type(exc).__name__}")
        if status == 429:
            extra["Retry-After"] = self.retry_after
        payload = json.dumps(answer).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    def _route(self, method: str, path: str, headers: dict[str, str], body: str) -> tuple[int, dict[str, Any]]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, _error(401, "unauthorized")
        if headers.get("x-dfns-appid") != self.app_id:
            return 401, _error(401, "unknown application")
        signatures_path = f"/keys/{self.key_id}/signatures"
        if method == "POST" and path == "/auth/action/init":
            return self._init(json.loads(body))
        if method == "POST" and path == "/auth/action":
            return self._complete(json.loads(body))
        if method == "GET" and path == f"/wallets/{self.wallet_id}":
            return 200, self._wallet()
        if method == "POST" and path == signatures_path:
            return self._sign(path, headers, body)
        if method == "GET" and path.startswith(signatures_path + "/"):
            signature = self.signatures.get(path.rsplit("/", 1)[1])
            if signature is None:
                return 404, _error(404, "signature not found")
            return 200, self._answer(signature)
        if path.startswith("/wallets/") and "/signatures" in path:
            return 404, _error(404, "deprecated endpoint not served here: use POST /keys/{keyId}/signatures")
        if path.startswith("/wallets/"):
            return 404, _error(404, "wallet not found")
        if path.startswith("/keys/"):
            return 404, _error(404, "key not found")
        return 404, _error(404, "not found")

    def _wallet(self) -> dict[str, Any]:
        public_key = PrivateKey(bytes.fromhex(self.wallet_private_key.removeprefix("0x"))).public_key
        return {
            "id": self.wallet_id,
            "network": "Ethereum",
            "address": self.wallet_address.lower(),
            "signingKey": {
                "id": self.key_id,
                "scheme": "ECDSA",
                "curve": "secp256k1",
                "publicKey": public_key.to_compressed_bytes().hex(),
            },
            "status": "Active",
        }

    def _init(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("userActionServerKind", "Api") != "Api" or body["userActionHttpMethod"] not in (
            "POST",
            "PUT",
            "DELETE",
            "GET",
        ):
            raise ValueError("bad user action")
        if not isinstance(body["userActionPayload"], str) or not body["userActionHttpPath"].startswith("/"):
            raise ValueError("bad user action")
        challenge = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        identifier = "ci-" + secrets.token_hex(8)
        self.challenges[identifier] = (
            challenge,
            body["userActionHttpMethod"],
            body["userActionHttpPath"],
            body["userActionPayload"],
        )
        return 200, {
            "challenge": challenge,
            "challengeIdentifier": identifier,
            "supportedCredentialKinds": [{"kind": "Key", "factor": "first", "requiresSecondFactor": False}],
            "userVerification": "required",
            "attestation": "none",
            "allowCredentials": {"key": [{"type": "public-key", "id": self.credential_id}], "webauthn": []},
            "externalAuthenticationUrl": "",
        }

    def _complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        challenge, method, path, payload = self.challenges.pop(body["challengeIdentifier"])
        factor = body["firstFactor"]
        assertion = factor["credentialAssertion"]
        if factor["kind"] != "Key" or assertion["credId"] != self.credential_id:
            return 401, _error(401, "unknown credential")
        client_data_bytes = _b64url_decode(assertion["clientData"])
        client_data = json.loads(client_data_bytes)
        if (client_data["type"], client_data["challenge"], client_data.get("origin")) != (
            "key.get",
            challenge,
            self.app_origin,
        ):
            return 401, _error(401, "client data does not match the challenge")
        try:
            self.credential_public_key.verify(
                _b64url_decode(assertion["signature"]), client_data_bytes, ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return 401, _error(401, "invalid signature")
        token = "ua-" + secrets.token_hex(16)
        self.user_actions[token] = (method, path, payload)
        return 200, {"userAction": token}

    def _sign(self, path: str, headers: dict[str, str], body: str) -> tuple[int, dict[str, Any]]:
        if self.unavailable > 0:
            self.unavailable -= 1
            return 503, _error(503, "service unavailable")
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return 429, _error(429, "too many requests")
        bound = self.user_actions.pop(headers.get("x-dfns-useraction", ""), None)
        if bound != ("POST", path, body):
            return 401, _error(401, "user action signature missing or not for this request")
        request = json.loads(body)
        if request["kind"] != "Transaction" or request["blockchainKind"] != "Evm":
            raise ValueError("only EVM transactions are served here")
        external_id = request.get("externalId")
        if external_id in self.external_ids:
            first_body, signature_id = self.external_ids[external_id]
            if first_body != body:
                return 409, _error(409, "Conflicting signature with same externalId")
            return 200, self._answer(self.signatures[signature_id])
        if self.deny:
            return 403, _error(403, self.deny)
        tx = decode_unsigned_eip1559(bytes.fromhex(request["transaction"].removeprefix("0x")))
        if self.tamper:
            tx["nonce"] += 1
        signed = Account.from_key(self.wallet_private_key).sign_transaction(tx)
        signature_id = "sig-" + secrets.token_hex(6)
        self.signatures[signature_id] = {
            "id": signature_id,
            "keyId": self.key_id,
            "requester": {"userId": "us-service-account", "tokenId": "to-test"},
            "requestBody": request,
            "status": "Pending",
            "dateRequested": "2025-01-01T00:00:00.000Z",
            "_signature": {
                "r": hex(signed.r), "s": hex(signed.s), "recid": signed.v,
                "encoded": "0x" + signed.r.to_bytes(32, "big").hex() + signed.s.to_bytes(32, "big").hex(),
            },
            "_signedData": "0x" + bytes(signed.raw_transaction).hex(),
        }  # fmt: skip
        if external_id:
            request["externalId"] = external_id
            self.external_ids[external_id] = (body, signature_id)
        return 200, self._answer(self.signatures[signature_id])

    def _answer(self, signature: dict[str, Any]) -> dict[str, Any]:
        """The request as DFNS shows it now: each answer while `pending` lasts says Pending."""
        if signature["status"] == "Pending":
            if self.pending > 0:
                self.pending -= 1
            elif self.reject:
                signature["status"], signature["reason"] = "Rejected", self.reject
            else:
                signature["status"] = "Signed"
                signature["signature"] = signature["_signature"]
                signature["signedData"] = signature["_signedData"]
                signature["dateSigned"] = "2025-01-01T00:00:01.000Z"
        return {key: value for key, value in signature.items() if not key.startswith("_")}


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"id": secrets.token_hex(8), "status": status, "message": message}}
