"""Local HTTP servers standing in for the external services the agreements app talks to.

- `Receiver`: the blockchain service's `POST /webhook/money-guard`. It verifies every request with
  the public key, independently of our code, following the scheme documented in the README, and
  answers from a script: a status (with headers), a stall past the client's timeout, or a dropped
  connection.
- `DiscordServer`: a Discord webhook: records JSON bodies, can answer 429 with `retry_after`.
Also an independent signer for the inbound direction.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


# --- The documented scheme, written independently of agreements.signing ------------------------
def verify_documented(headers: dict[str, str], body: bytes, public_pem: str, application_id: str) -> bool:
    """README: signed content `{id}.{timestamp}.{body}`, RSASSA-PSS SHA-256, `v1-rsa-pss,<b64>`."""
    if headers.get("webhook-application-id") != application_id:
        return False
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    content = f"{msg_id}.{timestamp}.".encode() + body
    for entry in headers.get("webhook-signature", "").split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1-rsa-pss":
            continue
        try:
            key.verify(
                base64.b64decode(encoded),
                content,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                hashes.SHA256(),
            )
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def sign_documented(
    *, body: bytes, private_pem: str, application_id: str, webhook_id: str, timestamp: int | None = None
) -> dict[str, str]:
    """Headers the blockchain service sends with an inbound webhook (same documented scheme)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(
        f"{webhook_id}.{timestamp}.".encode() + body,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1-rsa-pss," + base64.b64encode(signature).decode(),
        "webhook-application-id": application_id,
    }


# --- Servers --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """What the receiver does with one request: answer `status`, stall `stall` seconds, or `drop`."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b'{"ok":true}'
    stall: float = 0.0
    drop: bool = False


@dataclass
class ReceivedRequest:
    at: float
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _LocalServer:
    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        handler = self._handler_class()
        self.server = _Server(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.handle(self, headers, body)

        return Handler

    def handle(self, request: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        raise NotImplementedError

    @staticmethod
    def answer(request: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.drop:
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.stall:
            time.sleep(reply.stall)
        try:
            request.send_response(reply.status)
            for name, value in reply.headers:
                request.send_header(name, value)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(reply.body)))
            request.end_headers()
            request.wfile.write(reply.body)
        except OSError:
            pass  # the client gave up (timeout test)


class Receiver(_LocalServer):
    """The blockchain service's webhook endpoint. Unverifiable requests get 401. `port`: a given one (a
    receiver started again where the last one was), else a free one."""

    def __init__(self, *, public_pem: str, application_id: str, port: int = 0) -> None:
        super().__init__(port)
        self.public_pem = public_pem
        self.application_id = application_id
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.requests: list[ReceivedRequest] = []

    def handle(self, request: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        verified = verify_documented(headers, body, self.public_pem, self.application_id)
        with self.lock:
            self.requests.append(ReceivedRequest(time.monotonic(), headers, body, verified))
            reply = self.script.popleft() if self.script else self.default
        self.answer(request, reply if verified else Reply(status=401, body=b'{"error":"bad signature"}'))

    def distinct_ids(self) -> set[str]:
        with self.lock:
            return {r.headers["webhook-id"] for r in self.requests if r.verified}

    def for_delivery(self, delivery_id: object) -> list[ReceivedRequest]:
        with self.lock:
            return [r for r in self.requests if r.headers.get("webhook-id") == str(delivery_id)]


class DiscordServer(_LocalServer):
    """A Discord webhook: 204 for each accepted message, or scripted replies (e.g. 429)."""

    def __init__(self) -> None:
        super().__init__()
        self.script: deque[Reply] = deque()
        self.messages: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []

    def handle(self, request: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        message = json.loads(body)
        with self.lock:
            self.messages.append(message)
            reply = self.script.popleft() if self.script else Reply(status=204, body=b"")
            if 200 <= reply.status < 300:
                self.accepted.append(message)
        self.answer(request, reply)


def closed_port_url() -> str:
    """A URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def field_of(embed: dict[str, Any], name: str) -> str:
    return str(next(f["value"] for f in embed["fields"] if f["name"] == name))


__all__ = [
    "DiscordServer",
    "ReceivedRequest",
    "Receiver",
    "Reply",
    "closed_port_url",
    "field_of",
    "sign_documented",
    "verify_documented",
]
