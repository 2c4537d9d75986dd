"""Token amounts between base units (int) and decimal strings in token units (API and admin).

Parsing is strict: plain digits with an optional fraction, no sign, no exponent, no more fraction
digits than the token has decimals, and at most a uint256 in base units (what a contract takes).
Nothing goes through float.
"""

from __future__ import annotations

import re

from chain.fields import UINT256_MAX

_AMOUNT = re.compile(r"^(0|[1-9]\d*)(?:\.(\d+))?$")
_UINT256_DIGITS = len(str(UINT256_MAX))


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
    # the length test first: int() of thousands of digits is slow, and refused past 4300 of them
    if len(whole) > _UINT256_DIGITS:
        raise _too_large(decimals)
    value: int = int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
    if value > UINT256_MAX:
        raise _too_large(decimals)
    return value


def _too_large(decimals: int) -> AmountError:
    most = format_units(UINT256_MAX, decimals)
    return AmountError(f"too large: at most {most} in token units (uint256 base units)")


def format_units(value: int | None, decimals: int) -> str | None:
    if value is None:
        return None
    value = int(value)
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**decimals)
    if decimals == 0 or fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}." + f"{fraction:0{decimals}d}".rstrip("0")
