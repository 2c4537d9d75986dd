"""Model fields for chain values: uint256 amounts stored exactly, read back as `int`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core import exceptions
from django.core.validators import DecimalValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.functional import cached_property

UINT256_MAX = 2**256 - 1
"""The largest amount a contract takes; every amount input is bounded by it (numeric(78, 0) holds more)."""


class Uint256Field(models.DecimalField):  # type: ignore[type-arg]
    """A uint256 (wei, token base units) as `numeric(78, 0)`; Python sees `int`, never float.

    Model validation (`full_clean`, model forms) refuses what a uint256 cannot hold; the column
    alone would take up to 10**78 - 1, which no contract call can carry.
    """

    default_validators = [
        MinValueValidator(0, message="must not be negative (a uint256)"),
        MaxValueValidator(UINT256_MAX, message=f"too large: at most {UINT256_MAX} (uint256)"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["max_digits"] = 78
        kwargs["decimal_places"] = 0
        super().__init__(*args, **kwargs)

    @cached_property
    def validators(self) -> list[Any]:
        # Without DecimalField's DecimalValidator: it expects a Decimal (to_python gives int) and the
        # uint256 bound above is tighter than its 78 digits anyway.
        return [v for v in super().validators if not isinstance(v, DecimalValidator)]

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> int | None:
        return None if value is None else int(value)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, int):
            return value
        converted = super().to_python(value)
        if converted is None:
            return None
        if converted != converted.to_integral_value():
            # base units are whole: a fraction here is a units mistake, never something to round
            raise exceptions.ValidationError(f"{value!r} is not a whole number of base units.", code="invalid")
        return int(converted)

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        if isinstance(value, int):
            value = Decimal(value)
        return super().get_db_prep_save(value, connection)
