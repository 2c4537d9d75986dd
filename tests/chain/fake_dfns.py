"""A local DFNS API for tests: the documented request shapes, user-action signing verified with
the service account credential's public key, and real secp256k1 signatures from a test wallet key.

Endpoints: `POST /auth/action/init`, `POST /auth/action`, `GET /wallets/{id}`,
`POST /wallets/{id}/signatures` (kind `Transaction`; answers `Pending`, then `Signed` on
`GET /wallets/{id}/signatures/{sid}`). Every request needs `Authorization: Bearer <token>` and the
app id header; the signature request needs an `X-DFNS-USERACTION` token bound to its exact
method, path and body. Anything else is refused the way DFNS would (401/400/404).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import rlp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
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
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)
    challenges: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)
    user_actions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    signatures: dict[str, dict[str, Any]] = field(default_factory=dict)
    unavailable: int = 0  # answer this many signature requests with 503
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    @property
    def wallet_address(self) -> str:
        return str(Account.from_key(self.wallet_private_key).address)

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
        try:
            status, answer = self._route(method, handler.path, headers, body)
        except (KeyError, ValueError, TypeError) as exc:
            status, answer = 400, {"error": {"message": f"bad request: {type(exc).__name__}"}}
        payload = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(self, method: str, path: str, headers: dict[str, str], body: str) -> tuple[int, dict[str, Any]]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": {"message": "unauthorized"}}
        if headers.get("x-dfns-appid") != self.app_id:
            return 401, {"error": {"message": "unknown application"}}
        wallet_path = f"/wallets/{self.wallet_id}"
        if method == "POST" and path == "/auth/action/init":
            return self._init(json.loads(body))
        if method == "POST" and path == "/auth/action":
            return self._complete(json.loads(body))
        if method == "GET" and path == wallet_path:
            return 200, {"id": self.wallet_id, "network": "Ethereum", "address": self.wallet_address}
        if method == "POST" and path == f"{wallet_path}/signatures":
            if self.unavailable > 0:
                self.unavailable -= 1
                return 503, {"error": {"message": "service unavailable"}}
            return self._sign(path, headers, body)
        if method == "GET" and path.startswith(f"{wallet_path}/signatures/"):
            signature = self.signatures[path.rsplit("/", 1)[1]]
            signature["status"] = "Signed"
            return 200, signature
        return 404, {"error": {"message": "not found"}}

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
            return 401, {"error": {"message": "unknown credential"}}
        client_data_bytes = _b64url_decode(assertion["clientData"])
        client_data = json.loads(client_data_bytes)
        if (client_data["type"], client_data["challenge"], client_data.get("origin")) != (
            "key.get",
            challenge,
            self.app_origin,
        ):
            return 401, {"error": {"message": "client data does not match the challenge"}}
        try:
            self.credential_public_key.verify(
                _b64url_decode(assertion["signature"]), client_data_bytes, ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return 401, {"error": {"message": "invalid signature"}}
        token = "ua-" + secrets.token_hex(16)
        self.user_actions[token] = (method, path, payload)
        return 200, {"userAction": token}

    def _sign(self, path: str, headers: dict[str, str], body: str) -> tuple[int, dict[str, Any]]:
        bound = self.user_actions.pop(headers.get("x-dfns-useraction", ""), None)
        if bound != ("POST", path, body):
            return 401, {"error": {"message": "user action signature missing or not for this request"}}
        request = json.loads(body)
        if request["kind"] != "Transaction":
            raise ValueError("only Transaction is served here")
        tx = decode_unsigned_eip1559(bytes.fromhex(request["transaction"].removeprefix("0x")))
        signed = Account.from_key(self.wallet_private_key).sign_transaction(tx)
        signature_id = "sig-" + secrets.token_hex(6)
        self.signatures[signature_id] = {
            "id": signature_id,
            "walletId": self.wallet_id,
            "network": "Ethereum",
            "requestBody": request,
            "status": "Signed",
            "signature": {
                "r": hex(signed.r), "s": hex(signed.s), "recid": signed.v,
                "encoded": "0x" + signed.r.to_bytes(32, "big").hex() + signed.s.to_bytes(32, "big").hex(),
            },
            "signedData": "0x" + bytes(signed.raw_transaction).hex(),
        }  # fmt: skip
        return 200, {**self.signatures[signature_id], "status": "Pending", "signature": None, "signedData": None}
