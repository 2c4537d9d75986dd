"""Hedera entity ids (`shard.realm.num`) and the EVM addresses they stand for.

Hedera users name tokens and contracts by entity id (`0.0.4431`), optionally written with the
HIP-15 checksum of their network (`0.0.4431-xxxxx`). An address input here is a 0x address or
such an id, written exactly as HIP-15 says: lowercase checksum, no leading zeros (spaces around
it are trimmed).

An id becomes an address through the Mirror Node (`resolve`): `GET /api/v1/contracts/{id}` gives a
contract's `evm_address` (a contract deployed through the JSON-RPC relay has the address its
CREATE gave it, not its long-zero form); when the Mirror Node does not know that contract,
`GET /api/v1/tokens/{id}` tells whether it is an HTS token, and a token is addressed by its
long-zero form (`0x` + shard in 4 bytes, realm in 8, num in 8, big-endian). Without a Mirror Node
an id is taken as its long-zero form, unchecked. The reverse, an address to an id, asks
`GET /api/v1/contracts/{address}` (then the tokens, for a long-zero address); it is None when the
Mirror Node knows no such entity, and without a Mirror Node only a long-zero address has an id.

`address_resolve` is the service every address input goes through: it reads the settings and
turns the errors here into the domain errors the API and the admin show (400 naming the field, 503).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from eth_utils.address import is_hex_address, to_checksum_address

from chain.errors import TransientChainError
from config.errors import InvalidInput, Unavailable

logger = logging.getLogger(__name__)

MAINNET = b"\x00"
TESTNET = b"\x01"
PREVIEWNET = b"\x02"
# HIP-15 ledger ids; `local-node` is the one Hedera's local node and Solo networks use.
NAMED_LEDGERS = {"mainnet": MAINNET, "testnet": TESTNET, "previewnet": PREVIEWNET, "local-node": b"\x03"}
PUBLIC_LEDGERS = (MAINNET, TESTNET, PREVIEWNET)

# HIP-15's input format: integers without leading zeros, an optional 5-letter lowercase checksum.
_ENTITY_ID = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([a-z]{5}))?$")
_LOOKS_LIKE_ENTITY_ID = re.compile(r"^\d+\.\d+\.\d+(?:-.*)?$")
_P3 = 26**3
_P5 = 26**5
EXPECTED = "a 0x address or a Hedera id (shard.realm.num, e.g. 0.0.4431, optionally with its checksum: 0.0.4431-abcde)"


class HederaIdError(ValueError):
    """The text is not a 0x address or a well-formed Hedera id, or its checksum is wrong."""


class UnknownHederaEntity(LookupError):
    """The Mirror Node knows no contract and no token with this id."""


class MirrorNodeUnavailable(TransientChainError):
    """The Mirror Node could not be reached or answered an error of its own (5xx, 429, unreadable)."""


@dataclass(frozen=True, order=True)
class EntityId:
    shard: int
    realm: int
    num: int

    def __str__(self) -> str:
        return f"{self.shard}.{self.realm}.{self.num}"

    @property
    def long_zero_address(self) -> str:
        """The entity's EVM address derived from its id (how HTS tokens are addressed), checksummed."""
        raw = self.shard.to_bytes(4, "big") + self.realm.to_bytes(8, "big") + self.num.to_bytes(8, "big")
        return str(to_checksum_address("0x" + raw.hex()))

    def checksum(self, ledger: bytes) -> str:
        """The HIP-15 checksum of this id on the ledger `ledger` (5 lowercase letters)."""
        digits = [10 if char == "." else int(char) for char in str(self)]
        padded = ledger + bytes(6)
        even = sum(digits[0::2]) % 11
        odd = sum(digits[1::2]) % 11
        weighted = 0
        for digit in digits:
            weighted = (weighted * 31 + digit) % _P3
        ledger_hash = 0
        for byte in padded:
            ledger_hash = (ledger_hash * 31 + byte) % _P5
        value = ((((len(digits) % 5) * 11 + even) * 11 + odd) * _P3 + weighted + ledger_hash) % _P5
        value = (value * 1_000_003) % _P5
        letters = []
        for _ in range(5):
            value, rest = divmod(value, 26)
            letters.append(chr(ord("a") + rest))
        return "".join(reversed(letters))


@dataclass(frozen=True)
class ResolvedAddress:
    """An address input resolved: the checksummed EVM address and, where known, its Hedera id."""

    address: str
    hedera_id: str | None


def ledger_ids(setting: str) -> tuple[bytes, ...]:
    """The ledgers a checksum may be written for, from HEDERA_LEDGER_ID: a name (mainnet, testnet,
    previewnet, local-node) or a hex ledger id (0x...); empty: any of the three public networks."""
    value = setting.strip().lower()
    if not value:
        return PUBLIC_LEDGERS
    if value in NAMED_LEDGERS:
        return (NAMED_LEDGERS[value],)
    if re.fullmatch(r"0x(?:[0-9a-f]{2})+", value):
        return (bytes.fromhex(value[2:]),)
    raise ValueError(
        f"HEDERA_LEDGER_ID={setting!r}: use mainnet, testnet, previewnet, local-node or a hex ledger id (0x...)"
    )


def parse_entity_id(text: str, *, ledgers: tuple[bytes, ...]) -> EntityId:
    """An id in HIP-15's input format; a checksum, when written, must be right for one of `ledgers`."""
    match = _ENTITY_ID.match(text)
    if not match:
        raise HederaIdError(f"{text!r} is not {EXPECTED}")
    shard, realm, num = (int(part) for part in match.group(1, 2, 3))
    if shard >= 2**32 or realm >= 2**64 or num >= 2**64:
        raise HederaIdError(f"{text!r} is too large for an EVM address (shard < 2^32, realm and num < 2^64)")
    entity = EntityId(shard, realm, num)
    written = match.group(4)
    if written is not None and all(entity.checksum(ledger) != written for ledger in ledgers):
        raise HederaIdError(f"the checksum of {text!r} is wrong: a typo, or an id of another Hedera network")
    return entity


def parse_address_input(text: str, *, ledgers: tuple[bytes, ...]) -> str | EntityId:
    """A checksummed 0x address, or a Hedera id; anything else is a `HederaIdError` saying what is expected."""
    if not isinstance(text, str):
        raise HederaIdError(f"expected {EXPECTED}")
    value = text.strip()
    if is_hex_address(value) and value.startswith(("0x", "0X")):
        return str(to_checksum_address(value))
    if _LOOKS_LIKE_ENTITY_ID.match(value):
        return parse_entity_id(value, ledgers=ledgers)
    raise HederaIdError(f"{value!r} is not {EXPECTED}" if value else f"expected {EXPECTED}")


def looks_like_entity_id(text: str) -> bool:
    """True for text shaped like an id (digits.digits.digits, maybe a suffix): parse it to know more."""
    return bool(_LOOKS_LIKE_ENTITY_ID.match(text.strip()))


def entity_of_long_zero(address: str) -> EntityId | None:
    """The `0.0.N` id a long-zero address (12 zero bytes, then N) stands for; None for any other address."""
    raw = bytes.fromhex(address.removeprefix("0x").removeprefix("0X"))
    if len(raw) != 20 or any(raw[:12]):
        return None
    num = int.from_bytes(raw[12:], "big")
    return EntityId(0, 0, num) if num else None


class MirrorEntities:
    """Entity lookups on the Mirror Node: `GET /api/v1/contracts/{idOrAddress}` and `/api/v1/tokens/{id}`.

    A 404 is None (the Mirror Node does not know it); a 400 is a `HederaIdError` with the Mirror
    Node's message; anything else that is not a 200 with a JSON object is `MirrorNodeUnavailable`.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        if not base_url:
            raise MirrorNodeUnavailable("HEDERA_MIRROR_URL is not set")
        base = base_url.rstrip("/")
        self.base_url = base.removesuffix("/api/v1")  # like the listener's client: either form is accepted
        self.timeout = timeout
        self.session = session or requests.Session()

    def contract(self, id_or_address: str) -> dict[str, Any] | None:
        return self._get(f"/api/v1/contracts/{id_or_address}")

    def token(self, entity: EntityId) -> dict[str, Any] | None:
        return self._get(f"/api/v1/tokens/{entity}")

    def _get(self, path: str) -> dict[str, Any] | None:
        try:
            response = self.session.get(
                self.base_url + path, timeout=self.timeout, headers={"Accept": "application/json"}
            )
        except requests.RequestException as exc:
            raise MirrorNodeUnavailable(f"mirror node unreachable: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code == 400:
            raise HederaIdError(f"the Mirror Node refused it: {_messages(response)}")
        if response.status_code != 200:
            raise MirrorNodeUnavailable(f"mirror node answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise MirrorNodeUnavailable("mirror node answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise MirrorNodeUnavailable("mirror node answered something that is not a JSON object")
        return body


def _messages(response: requests.Response) -> str:
    try:
        return "; ".join(str(item.get("message")) for item in response.json()["_status"]["messages"])[:300]
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"HTTP {response.status_code}"


def _evm_address(value: Any) -> str | None:
    if isinstance(value, str) and is_hex_address(value):
        return str(to_checksum_address(value if value.startswith("0x") else "0x" + value))
    return None


def resolve(text: str, *, ledgers: tuple[bytes, ...], mirror: MirrorEntities | None) -> ResolvedAddress:
    """An address input (a 0x address or a Hedera id) as an EVM address and, where known, its id.

    Raises `HederaIdError` (malformed, wrong checksum, refused by the Mirror Node),
    `UnknownHederaEntity` (an id the Mirror Node knows neither as a contract nor as a token) and
    `MirrorNodeUnavailable`.
    """
    parsed = parse_address_input(text, ledgers=ledgers)
    if isinstance(parsed, EntityId):
        return _address_of(parsed, mirror)
    return ResolvedAddress(parsed, _id_of(parsed, mirror))


def _address_of(entity: EntityId, mirror: MirrorEntities | None) -> ResolvedAddress:
    if mirror is None:
        return ResolvedAddress(entity.long_zero_address, str(entity))
    contract = mirror.contract(str(entity))
    if contract is not None:
        # a contract without an EVM alias (created through HAPI) is addressed by its long-zero form
        return ResolvedAddress(_evm_address(contract.get("evm_address")) or entity.long_zero_address, str(entity))
    if mirror.token(entity) is not None:
        return ResolvedAddress(entity.long_zero_address, str(entity))
    raise UnknownHederaEntity(f"the Mirror Node does not know {entity}: no contract or token has this id")


def _id_of(address: str, mirror: MirrorEntities | None) -> str | None:
    long_zero = entity_of_long_zero(address)
    if mirror is None:
        return str(long_zero) if long_zero else None
    contract = mirror.contract(address)
    if contract is not None and isinstance(contract.get("contract_id"), str):
        return str(contract["contract_id"])
    if long_zero is not None and mirror.token(long_zero) is not None:
        return str(long_zero)
    return None


def address_resolve(*, field: str, value: str) -> ResolvedAddress:
    """The service every address input goes through: `value` (a 0x address or a Hedera id, e.g.
    `0.0.4431` or `0.0.4431-abcde`) given for `field`, as an EVM address and, where known, its Hedera
    id, through the Mirror Node at HEDERA_MIRROR_URL (none: the long-zero form, see above); checksums
    are checked against HEDERA_LEDGER_ID. Malformed input, a wrong checksum and an id the Mirror Node
    does not know are `InvalidInput(field, ...)`; a Mirror Node that does not answer is `Unavailable`
    (a 503). Network I/O: call it outside a database transaction."""
    try:
        ledgers = ledger_ids(settings.HEDERA_LEDGER_ID)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from exc
    try:
        mirror = (
            MirrorEntities(settings.HEDERA_MIRROR_URL, timeout=settings.CHAIN_RPC_TIMEOUT)
            if settings.HEDERA_MIRROR_URL
            else None
        )
        return resolve(value, ledgers=ledgers, mirror=mirror)
    except (HederaIdError, UnknownHederaEntity) as exc:
        raise InvalidInput(field, str(exc)) from None
    except MirrorNodeUnavailable as exc:
        # the message names no URL: HEDERA_MIRROR_URL may carry credentials
        logger.warning("mirror node unavailable field=%s error=%s", field, exc)
        raise Unavailable("the Hedera Mirror Node did not answer; nothing was changed: try again shortly") from exc
