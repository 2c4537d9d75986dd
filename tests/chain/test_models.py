"""The lane's state machine refuses illegal moves; uint256 values survive the database exactly and are bounded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from chain.fields import Uint256Field
from chain.models import ChainTransaction, IllegalTransition

Status = ChainTransaction.Status
MAX_UINT256 = 2**256 - 1


def _row(**fields: object) -> ChainTransaction:
    return ChainTransaction.objects.create(
        intent_key="k",
        purpose="test",
        to="0x" + "11" * 20,
        data="0x",
        **fields,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "target"),
    [
        (Status.PENDING, Status.BROADCAST),
        (Status.PENDING, Status.CONFIRMED),
        (Status.SIGNED, Status.FAILED),
        (Status.CONFIRMED, Status.PENDING),
        (Status.REVERTED, Status.CONFIRMED),
        (Status.FAILED, Status.SIGNED),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(start: str, target: str) -> None:
    # given
    row = _row(status=start)
    # when / then
    with pytest.raises(IllegalTransition):
        row.transition(target)
    row.refresh_from_db()
    assert row.status == start


@pytest.mark.django_db
def test_a_final_transition_stamps_the_time_and_saves_the_given_fields() -> None:
    # given
    row = _row(status=Status.BROADCAST)
    # when
    row.transition(Status.CONFIRMED, block_number=7, tx_hash="0x" + "ab" * 32)
    # then
    row.refresh_from_db()
    assert (row.status, row.block_number, row.tx_hash) == (Status.CONFIRMED, 7, "0x" + "ab" * 32)
    assert row.finished_at is not None
    assert row.is_final


@pytest.mark.django_db
def test_uint256_values_round_trip_as_exact_integers() -> None:
    # given
    row = _row(value=MAX_UINT256, max_fee_per_gas=MAX_UINT256 - 1)
    # when
    loaded = ChainTransaction.objects.get(pk=row.pk)
    # then
    assert loaded.value == MAX_UINT256
    assert loaded.max_fee_per_gas == MAX_UINT256 - 1
    assert isinstance(loaded.value, int)
    assert ChainTransaction.objects.filter(value=MAX_UINT256).count() == 1


@pytest.mark.parametrize(("raw", "expected"), [("12", 12), ("1e3", 1000), (Decimal("7"), 7), (5, 5)])
def test_uint256_field_reads_whole_numbers_as_int(raw: object, expected: int) -> None:
    assert Uint256Field().to_python(raw) == expected


@pytest.mark.parametrize("raw", ["1.5", Decimal("0.000001"), "abc"])
def test_uint256_field_refuses_fractions_and_garbage_instead_of_rounding(raw: object) -> None:
    with pytest.raises(ValidationError):
        Uint256Field().to_python(raw)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(MAX_UINT256 + 1, "too large", id="2**256"),
        pytest.param(10**78 - 1, "too large", id="most-the-column-holds"),
        pytest.param(-1, "negative", id="negative"),
    ],
)
def test_uint256_field_validation_refuses_what_a_uint256_cannot_hold(value: int, message: str) -> None:
    # given a value the numeric(78, 0) column would store but no contract call can carry
    field = Uint256Field()
    # when / then
    with pytest.raises(ValidationError, match=message):
        field.clean(value, None)
    assert field.clean(MAX_UINT256, None) == MAX_UINT256


@pytest.mark.django_db
@pytest.mark.parametrize("start", [Status.PENDING, Status.SIGNED, Status.BROADCAST])
def test_an_unmined_transaction_can_end_cancelled_and_a_cancelled_one_moves_nowhere(start: str) -> None:
    # given
    row = _row(status=start)
    # when
    row.transition(Status.CANCELLED, error="cancelled")
    # then
    row.refresh_from_db()
    assert (row.status, row.is_final, row.finished_at is not None) == (Status.CANCELLED, True, True)
    for target in set(Status.values) - {Status.CANCELLED}:
        with pytest.raises(IllegalTransition):
            row.transition(target)
