"""The money arithmetic of a distribution: pure functions on integers in base units, no I/O.

This is the ONE implementation used on every database; callers feed it a re-iterable stream of
`(address, balance)` rows ordered by address and write what it yields.

- `split_pro_rata`: a total split by balance with largest-remainder rounding. Each holder gets
  floor(total * balance / S); the R = total - sum(floors) holders with the largest remainders get
  one more base unit, ties broken by address (ascending). The parts sum exactly to the total.
  It streams: memory is bounded by a fixed histogram plus the holders whose remainder falls in the
  one histogram bucket where the cut lies (a handful in practice), never by the holder count.
- `per_token_amounts`: corporate actions and bond cash-outs, balance * amount_per_token // 10**decimals.
- `percentage_total`: basis points of a balance (1..10000), rounded down.
- `batch_sizes` / `batch_number_of`: batch N holds positions [(N-1)*size, N*size) of the ordered
  rows; numbers come from positions, never from page offsets, so nobody is in two batches or none.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator

Rows = Callable[[], Iterable[tuple[str, int]]]

BASIS_POINTS = 10_000
_BUCKETS = 1 << 16


def percentage_total(*, balance: int, basis_points: int) -> int:
    if not 1 <= basis_points <= BASIS_POINTS:
        raise ValueError("basis_points must be within 1..10000")
    if balance < 0:
        raise ValueError("balance must not be negative")
    return balance * basis_points // BASIS_POINTS


def per_token_amounts(
    rows: Iterable[tuple[str, int]], *, amount_per_token: int, decimals: int
) -> Iterator[tuple[str, int, int]]:
    """(address, balance, amount) for every row; amount may be 0 (the caller skips those)."""
    if amount_per_token < 0 or decimals < 0:
        raise ValueError("amount_per_token and decimals must not be negative")
    unit = 10**decimals
    for address, balance in rows:
        yield address, balance, balance * amount_per_token // unit


def _totals(rows: Rows) -> tuple[int, int]:
    count = total_balance = 0
    for _, balance in rows():
        if balance < 0:
            raise ValueError("balances must not be negative")
        count += 1
        total_balance += balance
    return count, total_balance


def split_pro_rata(*, total: int, rows: Rows, balance_sum: int | None = None) -> Iterator[tuple[str, int, int]]:
    """Yield (address, balance, amount) for every row, in the rows' order; amounts sum to `total`.

    `rows()` is called up to four times and must yield the same rows each time. When every balance is
    zero nothing can be split: ValueError (unless total is 0).
    """
    if total < 0:
        raise ValueError("total must not be negative")
    if balance_sum is None:
        _, balance_sum = _totals(rows)
    if balance_sum == 0:
        if total:
            raise ValueError("cannot split a positive total over zero balances")
        for address, balance in rows():
            yield address, balance, 0
        return

    # Pass 2: how many units the floors leave over, and where the remainders fall.
    histogram = [0] * _BUCKETS
    floors_sum = 0
    for _, balance in rows():
        floor, remainder = divmod(total * balance, balance_sum)
        floors_sum += floor
        histogram[remainder * _BUCKETS // balance_sum] += 1
    leftover = total - floors_sum  # 0 <= leftover < number of rows

    # The cut: every bucket above `cut` wins, `needed` winners come from bucket `cut` itself.
    cut, needed = _BUCKETS, 0
    remaining = leftover
    for bucket in range(_BUCKETS - 1, -1, -1):
        if remaining == 0:
            break
        if histogram[bucket] > remaining:
            cut, needed = bucket, remaining
            break
        if histogram[bucket] == remaining:
            cut = bucket - 1  # the whole bucket wins
            break
        remaining -= histogram[bucket]
    del histogram

    # Pass 3 (only when the cut splits a bucket): the winners inside it, largest remainder first,
    # then smallest address.
    winners: set[str] = set()
    if needed:
        in_cut = (
            (-remainder, address)
            for address, balance in rows()
            for remainder in (total * balance % balance_sum,)
            if remainder * _BUCKETS // balance_sum == cut
        )
        winners = {address for _, address in heapq.nsmallest(needed, in_cut)}

    # Pass 4: the amounts.
    for address, balance in rows():
        floor, remainder = divmod(total * balance, balance_sum)
        bucket = remainder * _BUCKETS // balance_sum
        extra = 1 if bucket > cut or (bucket == cut and address in winners) else 0
        yield address, balance, floor + extra


def batch_sizes(count: int, size: int) -> list[int]:
    """Holders in each batch, in order: full batches then the remainder."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    if count < 0:
        raise ValueError("count must not be negative")
    full, rest = divmod(count, size)
    return [size] * full + ([rest] if rest else [])


def batch_number_of(position: int, size: int) -> int:
    """1-based batch number of the row at 0-based `position`."""
    return position // size + 1
