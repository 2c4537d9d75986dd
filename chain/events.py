"""Decoded chain events (interim copy of chain-core's interface, replaced when chain-core merges)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DecodedEvent:
    event_name: str
    args: dict[str, Any]
    contract_address: str
    tx_hash: str
    log_index: int
    block_number: int
    block_timestamp: dt.datetime | None
