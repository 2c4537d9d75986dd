"""A holder snapshot spooled to a local temporary file: consistent, re-iterable, O(1) memory.

The execution planner copies (address, balance) rows ONCE from their source (the holder table, or
the chain at a token snapshot id) into this file, then the allocation makes its passes over the
file: every pass sees exactly the same rows even while balance events keep arriving, and no pass
loads the holders into memory or re-queries the database.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import IO


class HolderSnapshot:
    """Rows `address,balance` (ordered as appended; balances > 0 only), with their count and sum."""

    def __init__(self) -> None:
        self._file: IO[str] = tempfile.TemporaryFile(mode="w+", encoding="ascii")  # noqa: SIM115
        self.count = 0
        self.balance_sum = 0
        self._last_address = ""

    def append_many(self, rows: Iterable[tuple[str, int]]) -> None:
        lines = []
        for address, balance in rows:
            if balance <= 0:
                continue
            if address <= self._last_address:
                raise ValueError("snapshot rows must be appended in strictly ascending address order")
            self._last_address = address
            lines.append(f"{address},{balance}\n")
            self.count += 1
            self.balance_sum += balance
        self._file.writelines(lines)

    def rows(self) -> Iterator[tuple[str, int]]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            address, balance = line.rstrip("\n").split(",")
            yield address, int(balance)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> HolderSnapshot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
