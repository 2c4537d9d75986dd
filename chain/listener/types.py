"""Plain values the listener passes around: a fetched log, cursors and a poll's outcome."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FetchedLog:
    """One log as a source returned it, before decoding. `raw` is stored as is (JSON)."""

    address: str
    topics: tuple[str, ...]
    data: str
    tx_hash: str
    log_index: int
    block_number: int
    block_timestamp: dt.datetime | None
    consensus_timestamp: str  # Mirror Node "seconds.nanos"; "" for JSON-RPC
    raw: dict[str, Any]


@dataclass(frozen=True, order=True)
class MirrorPosition:
    """A position in a contract's Mirror Node log stream: (consensus timestamp, index in the transaction).

    Ordered like the Mirror Node orders logs. `index is None` means "every log at `timestamp`".
    """

    nanos: int
    index: int

    @classmethod
    def parse_timestamp(cls, value: str) -> int:
        """Nanoseconds since the epoch from "seconds[.nanos]" (nanos right-padded to 9 digits)."""
        seconds, _, fraction = value.partition(".")
        if not seconds.isdigit() or (fraction and (not fraction.isdigit() or len(fraction) > 9)):
            raise ValueError(f"not a seconds.nanoseconds timestamp: {value!r}")
        return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)

    @staticmethod
    def format_timestamp(nanos: int) -> str:
        return f"{nanos // 1_000_000_000}.{nanos % 1_000_000_000:09d}"


@dataclass
class PollResult:
    """What one `listener_poll` did. `more` is true when it stopped early with work left."""

    listener_id: int
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    processed: int = 0
    failed: int = 0
    undecodable: int = 0
    pages: int = 0
    more: bool = False
    skipped: str = ""
    error: str = ""

    def summary(self) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        text = (
            f"fetched={self.fetched} stored={self.stored} duplicates={self.duplicates} processed={self.processed}"
            f" failed={self.failed} undecodable={self.undecodable} pages={self.pages} more={self.more}"
        )
        return f"{text} error={self.error}" if self.error else text
