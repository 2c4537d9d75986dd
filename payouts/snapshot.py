"""A holder snapshot spooled to a local temporary file: consistent, re-iterable, O(1) memory.

The execution planner copies (address, balance) rows ONCE from their source (the chain at one
pinned block, or at a token snapshot id) into this file, then the allocation makes its passes over
the file: every pass sees exactly the same rows even while balances keep changing, and no pass
loads the holders into memory or re-reads the chain. Rows the chain lists in its own order are
sorted in bounded chunks spooled to temporary files and merged (`extend_unsorted`).
"""

from __future__ import annotations

import heapq
import itertools
import tempfile
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import IO

WRITE_CHUNK = 10_000
SORT_CHUNK = 200_000  # rows sorted in memory at a time (about 40 MB)


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
            if len(lines) >= WRITE_CHUNK:
                self._file.writelines(lines)
                lines.clear()
        self._file.writelines(lines)

    def extend_unsorted(self, rows: Iterable[tuple[str, int]], *, chunk: int = SORT_CHUNK) -> None:
        """Append rows given in any order (an address listed twice is an error, as out of order)."""
        runs: list[IO[str]] = []
        try:
            iterator = iter(rows)
            while part := sorted(itertools.islice(iterator, chunk)):
                run: IO[str] = tempfile.TemporaryFile(mode="w+", encoding="ascii")  # noqa: SIM115
                run.writelines(f"{address},{balance}\n" for address, balance in part)
                run.seek(0)
                runs.append(run)
            self.append_many(heapq.merge(*(_read(run) for run in runs)))
        finally:
            for run in runs:
                run.close()

    def rows(self) -> Iterator[tuple[str, int]]:
        self._file.flush()
        self._file.seek(0)
        return _read(self._file)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> HolderSnapshot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _read(file: IO[str]) -> Iterator[tuple[str, int]]:
    for line in file:
        address, balance = line.rstrip("\n").split(",")
        yield address, int(balance)
