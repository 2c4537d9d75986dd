"""Token amounts between base units (int) and decimal strings in token units (API and admin).

Parsing is strict: plain digits with an optional fraction, no sign, no exponent, no more fraction
digits than the token has decimals. Nothing goes through float.
"""

from __future__ import annotations

import re

_AMOUNT = re.compile(r"^(0|[1-9]\d*)(?:\.(\d+))?$")


class AmountError(ValueError):
    """A message a person can act on."""


def parse_units(text: object, decimals: int) -> int:
    if not isinstance(text, str):
        raise AmountError('send amounts as decimal strings, e.g. "1250.50"')
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise AmountError("not a positive decimal number (digits with an optional fraction, no sign or exponent)")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > decimals:
        raise AmountError(f"at most {decimals} decimal places")
    return int(int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or "0"))


def format_units(value: int | None, decimals: int) -> str | None:
    if value is None:
        return None
    value = int(value)
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**decimals)
    if decimals == 0 or fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}." + f"{fraction:0{decimals}d}".rstrip("0")
