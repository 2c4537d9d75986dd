"""The money arithmetic: pro rata with largest remainder, per-token amounts, percentages, batching."""

from __future__ import annotations

import random

import pytest

from payouts import allocation
from payouts.snapshot import HolderSnapshot


def _address(i: int) -> str:
    return "0x" + f"{i:040x}"


def _naive_largest_remainder(total: int, rows: list[tuple[str, int]]) -> dict[str, int]:
    """Oracle: the textbook algorithm, everything in memory."""
    balance_sum = sum(b for _, b in rows)
    floors = {a: total * b // balance_sum for a, b in rows}
    leftover = total - sum(floors.values())
    ranked = sorted(rows, key=lambda r: (-(total * r[1] % balance_sum), r[0]))
    for address, _ in ranked[:leftover]:
        floors[address] += 1
    return floors


def _split(total: int, rows: list[tuple[str, int]]) -> dict[str, int]:
    return {a: amount for a, _, amount in allocation.split_pro_rata(total=total, rows=lambda: iter(rows))}


@pytest.mark.parametrize("seed", range(40))
def test_pro_rata_matches_the_textbook_algorithm_and_sums_exactly(seed: int) -> None:
    # given random holders (some huge, some tiny balances) and a random total
    rng = random.Random(seed)
    count = rng.choice([1, 2, 3, 7, 50, 333, 1001])
    scale = rng.choice([1, 10**6, 10**18, 10**30])
    rows = [(_address(i), rng.randint(1, 1000) * rng.choice([1, scale])) for i in range(count)]
    total = rng.choice([0, 1, count - 1, count, count + 1, rng.randint(1, 10**24)])
    # when
    amounts = _split(total, rows)
    # then
    assert sum(amounts.values()) == total
    assert amounts == _naive_largest_remainder(total, rows)
    balance_sum = sum(b for _, b in rows)
    for address, balance in rows:
        exact_floor = total * balance // balance_sum
        assert amounts[address] - exact_floor in (0, 1)


def test_ties_go_to_the_smallest_addresses() -> None:
    # given three equal holders and 2 base units: each is owed 2/3
    rows = [(_address(3), 5), (_address(1), 5), (_address(2), 5)]
    rows.sort()
    # when
    amounts = _split(2, rows)
    # then the extra units go to the two smallest addresses
    assert amounts == {_address(1): 1, _address(2): 1, _address(3): 0}


def test_many_equal_balances_all_land_in_one_bucket_and_still_split_exactly() -> None:
    # given 10,000 equal holders: every remainder is the same, the cut falls inside one bucket
    rows = [(_address(i), 7) for i in range(10_000)]
    # when 12,345 units are split
    amounts = _split(12_345, rows)
    # then the first 2,345 addresses get 2, the rest 1
    assert sum(amounts.values()) == 12_345
    assert [amounts[_address(i)] for i in (0, 2_344, 2_345, 9_999)] == [2, 2, 1, 1]


def test_splitting_over_zero_balances_is_refused() -> None:
    with pytest.raises(ValueError, match="zero balances"):
        list(allocation.split_pro_rata(total=5, rows=lambda: iter([(_address(1), 0)])))


def test_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="total"):
        list(allocation.split_pro_rata(total=-1, rows=lambda: iter([(_address(1), 1)])))
    with pytest.raises(ValueError, match="negative"):
        list(allocation.split_pro_rata(total=1, rows=lambda: iter([(_address(1), -1)])))


@pytest.mark.parametrize(
    ("balance", "basis_points", "expected"),
    [
        (1_000_000, 10_000, 1_000_000),
        (1_000_000, 1, 100),
        (999, 5_000, 499),
        (0, 100, 0),
        (10**30, 1_234, 1234 * 10**26),
    ],
)
def test_percentage_total_rounds_down(balance: int, basis_points: int, expected: int) -> None:
    assert allocation.percentage_total(balance=balance, basis_points=basis_points) == expected


@pytest.mark.parametrize("basis_points", [0, 10_001, -5])
def test_percentage_out_of_range_is_refused(basis_points: int) -> None:
    with pytest.raises(ValueError, match="basis_points"):
        allocation.percentage_total(balance=100, basis_points=basis_points)


def test_per_token_amounts_use_the_asset_decimals_and_round_down() -> None:
    # given 2 decimals: 1.50 tokens and 0.01 tokens, paying 3 base units of payment token per whole token
    rows = [(_address(1), 150), (_address(2), 1)]
    # when
    result = list(allocation.per_token_amounts(rows, amount_per_token=3, decimals=2))
    # then 1.5 * 3 = 4.5 -> 4, and 0.01 * 3 -> 0
    assert result == [(_address(1), 150, 4), (_address(2), 1, 0)]


@pytest.mark.parametrize("size", [1, 2, 7, 100])
@pytest.mark.parametrize("edge", ["zero", "one", "size-1", "size", "size+1", "2*size+3"])
def test_every_position_is_in_exactly_one_batch(size: int, edge: str) -> None:
    # given a holder count around the batch-size edges
    count = {"zero": 0, "one": 1, "size-1": size - 1, "size": size, "size+1": size + 1, "2*size+3": 2 * size + 3}[edge]
    # when
    sizes = allocation.batch_sizes(count, size)
    numbers = [allocation.batch_number_of(position, size) for position in range(count)]
    # then batches are full except the last, and positions map onto them with no gap or overlap
    assert sum(sizes) == count
    assert all(s == size for s in sizes[:-1])
    assert all(0 < s <= size for s in sizes)
    assert [numbers.count(n) for n in range(1, len(sizes) + 1)] == sizes
    assert numbers == sorted(numbers)
    assert set(numbers) == set(range(1, len(sizes) + 1))


def test_snapshot_is_re_iterable_and_skips_zero_balances() -> None:
    # given
    with HolderSnapshot() as snapshot:
        snapshot.append_many([(_address(1), 10), (_address(2), 0)])
        snapshot.append_many([(_address(3), 5)])
        # then
        assert list(snapshot.rows()) == [(_address(1), 10), (_address(3), 5)]
        assert list(snapshot.rows()) == list(snapshot.rows())
        assert (snapshot.count, snapshot.balance_sum) == (2, 15)
        with pytest.raises(ValueError, match="ascending"):
            snapshot.append_many([(_address(2), 1)])


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [("1", 6, 1_000_000), ("1.5", 6, 1_500_000), ("0.000001", 6, 1), ("1250.50", 2, 125_050), ("7", 0, 7)],
)
def test_parse_units(text: str, decimals: int, expected: int) -> None:
    from payouts.units import format_units, parse_units

    assert parse_units(text, decimals) == expected
    assert parse_units(format_units(expected, decimals) or "", decimals) == expected


@pytest.mark.parametrize("text", ["-1", "1e5", "abc", "", "1.", ".5", "0x10", " ", "1.0000001", "01", "+1", "NaN"])
def test_parse_units_refuses_malformed_or_over_precise(text: str) -> None:
    from payouts.units import AmountError, parse_units

    with pytest.raises(AmountError):
        parse_units(text, 6)
