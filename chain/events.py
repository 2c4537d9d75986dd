"""Decoded chain events: the shape every event processor receives."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DecodedEvent:
    """One log decoded with our ABIs.

    `args` holds the event's arguments by name: integers as `int`, addresses checksummed `str`,
    `bytes32` as `bytes`. `tx_hash` is `0x`-prefixed lowercase hex.
    """

    event_name: str
    args: dict[str, Any] = field(hash=False)
    contract_address: str
    tx_hash: str
    log_index: int
    block_number: int
    block_timestamp: datetime.datetime | None = None
