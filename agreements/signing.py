"""The webhook signing scheme, both directions: Standard Webhooks headers with RSA signatures.

Signed content: `"{webhook-id}.{webhook-timestamp}.{raw body}"` (UTF-8 bytes).
Signature: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length 32, base64 (standard alphabet).
Headers:
    webhook-id              unique per message, stable across retries (the receiver's dedup key)
    webhook-timestamp       unix seconds when this try was signed (fresh per try)
    webhook-signature       space-separated `v1-rsa-pss,<base64>` entries, one per signing key
    webhook-application-id  the application id (BLOCKCHAIN_APPLICATION_ID)
A receiver accepts a message when the application id matches, the timestamp is within 5 minutes
of its clock, and any entry verifies with any configured public key.

Two key pairs, one per direction: ours signs what we send (BLOCKCHAIN_APPLICATION_SECRET_KEY; the
service verifies with the public half we registered), the service's signs what it sends us (we
verify with BLOCKCHAIN_SERVICE_PUBLIC_KEY). Our own key never authenticates an inbound message.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNATURE_VERSION = "v1-rsa-pss"
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
HEADER_APPLICATION_ID = "webhook-application-id"
TOLERANCE_SECONDS = 5 * 60
MAX_WEBHOOK_ID_LENGTH = 255

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)
_WEBHOOK_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")


class SignatureError(Exception):
    """The message is not authentic (the reason is safe to show to the sender)."""


def _normalise_pem(value: str) -> str:
    # One-line env values carry the PEM's newlines as the two characters "\n".
    return value.replace("\\n", "\n").strip()


def _pem_blocks(value: str) -> list[bytes]:
    return [match.group(0).encode() for match in _PEM_BLOCK.finditer(_normalise_pem(value))]


@cache
def load_private_keys(value: str) -> tuple[rsa.RSAPrivateKey, ...]:
    """Every RSA private key in `value` (several PEM blocks when keys are rotating)."""
    keys = []
    for block in _pem_blocks(value):
        key = serialization.load_pem_private_key(block, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("BLOCKCHAIN_APPLICATION_SECRET_KEY must hold RSA private keys")
        keys.append(key)
    if not keys:
        raise ValueError("BLOCKCHAIN_APPLICATION_SECRET_KEY holds no PEM private key")
    return tuple(keys)


@cache
def load_public_keys(value: str) -> tuple[rsa.RSAPublicKey, ...]:
    """Every RSA public key in `value` (several PEM blocks when keys are rotating)."""
    keys = []
    for block in _pem_blocks(value):
        key = serialization.load_pem_public_key(block)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("BLOCKCHAIN_SERVICE_PUBLIC_KEY must hold RSA public keys")
        keys.append(key)
    if not keys:
        raise ValueError("BLOCKCHAIN_SERVICE_PUBLIC_KEY holds no PEM public key")
    return tuple(keys)


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """The SubjectPublicKeyInfo PEM of a key (of a private key: its public half)."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@cache
def verification_keys(public_keys_pem: str, own_private_keys_pem: str = "") -> tuple[rsa.RSAPublicKey, ...]:
    """The keys in `public_keys_pem` that are not the public half of one of our own private keys.

    Our key pair signs outbound only: a message signed with it is never accepted inbound, even when
    our public key was configured as the sender's by mistake. Raises `ValueError` when no key is left.
    """
    keys = load_public_keys(public_keys_pem)
    own: set[str] = set()
    if own_private_keys_pem:
        try:
            own = {public_key_pem(key) for key in load_private_keys(own_private_keys_pem)}
        except ValueError:
            own = set()  # an unusable outbound key is reported by the outbound side; nothing to exclude
    accepted = tuple(key for key in keys if public_key_pem(key) not in own)
    if not accepted:
        raise ValueError("BLOCKCHAIN_SERVICE_PUBLIC_KEY holds only our own public key, never the service's")
    return accepted


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{webhook_id}.{timestamp}.".encode() + body


def sign(content: bytes, private_key: rsa.RSAPrivateKey) -> str:
    signature = private_key.sign(
        content,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return base64.b64encode(signature).decode()


def signature_headers(
    *, webhook_id: str, body: bytes, application_id: str, private_keys_pem: str, timestamp: int | None = None
) -> dict[str, str]:
    """The four authentication headers for one try of a message."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    content = signed_content(webhook_id, timestamp, body)
    entries = [f"{SIGNATURE_VERSION},{sign(content, key)}" for key in load_private_keys(private_keys_pem)]
    return {
        HEADER_ID: webhook_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: " ".join(entries),
        HEADER_APPLICATION_ID: application_id,
    }


def _verifies(content: bytes, signature: bytes, key: rsa.RSAPublicKey) -> bool:
    try:
        key.verify(
            signature,
            content,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class VerifiedMessage:
    webhook_id: str
    timestamp: int


def verify(
    *,
    headers: Mapping[str, str],
    body: bytes,
    application_id: str,
    public_keys_pem: str,
    own_private_keys_pem: str = "",
    now: float | None = None,
) -> VerifiedMessage:
    """Check a received message's headers and signature, or raise `SignatureError`.

    `headers` must be looked up case-insensitively (Django's `request.headers` is). A signature that
    verifies only with the public half of `own_private_keys_pem` (our key) is not valid.
    """
    webhook_id = headers.get(HEADER_ID, "")
    raw_timestamp = headers.get(HEADER_TIMESTAMP, "")
    raw_signature = headers.get(HEADER_SIGNATURE, "")
    received_application_id = headers.get(HEADER_APPLICATION_ID, "")
    if not (webhook_id and raw_timestamp and raw_signature and received_application_id):
        raise SignatureError(
            f"Missing authentication headers: {HEADER_ID}, {HEADER_TIMESTAMP}, {HEADER_SIGNATURE} "
            f"and {HEADER_APPLICATION_ID} are required."
        )
    if not application_id or not hmac.compare_digest(received_application_id.encode(), application_id.encode()):
        raise SignatureError("Unknown application id.")
    if not _WEBHOOK_ID.match(webhook_id):
        raise SignatureError(f"Malformed {HEADER_ID}.")
    if not raw_timestamp.isdigit() or len(raw_timestamp) > 12:
        raise SignatureError(f"Malformed {HEADER_TIMESTAMP}.")
    timestamp = int(raw_timestamp)
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError(f"{HEADER_TIMESTAMP} is more than {TOLERANCE_SECONDS} seconds off.")

    content = signed_content(webhook_id, timestamp, body)
    keys = verification_keys(public_keys_pem, own_private_keys_pem)
    for entry in raw_signature.split(" ")[:8]:
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION or not encoded:
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # RSA verification recomputes the padded digest and compares it in constant time.
        if any(_verifies(content, signature, key) for key in keys):
            return VerifiedMessage(webhook_id=webhook_id, timestamp=timestamp)
    raise SignatureError("No valid signature.")


def generate_key_pair(bits: int = 3072) -> tuple[str, str]:
    """A new RSA key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return private_pem, public_key_pem(key)
