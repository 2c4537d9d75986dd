"""Token amounts between base units (int) and decimal strings in token units (API and admin).

`display_units` is how a person reads an amount everywhere (admin lists, pages, CSV exports):
`5,000.000000 USDC`. `parse_typed_units` reads back what a person types in a form.
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


class TooManyDecimals(AmountError):
    """More fraction digits than the token has."""


def parse_units(text: object, decimals: int) -> int:
    if not isinstance(text, str):
        raise AmountError('send amounts as decimal strings, e.g. "1250.50"')
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise AmountError("not a positive decimal number (digits with an optional fraction, no sign or exponent)")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > decimals:
        raise TooManyDecimals(f"at most {decimals} decimal places")
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


def display_units(value: int | None, decimals: int, symbol: str = "", *, separators: bool = True) -> str:
    """An amount as a person reads it: thousands separators, every decimal the token has, its symbol
    (5_000_000_000, 6, "USDC" -> "5,000.000000 USDC"); "-" for none. Without `separators` for a CSV
    cell a spreadsheet reads as a number ("5000.000000")."""
    if value is None:
        return "-"
    value = int(value)
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**decimals)
    text = sign + (f"{whole:,}" if separators else str(whole)) + (f".{fraction:0{decimals}d}" if decimals else "")
    return f"{text} {symbol}" if symbol else text


def display_percent(basis_points: int | None) -> str:
    """Basis points as a person reads them: 250 -> "2.50 %"."""
    if basis_points is None:
        return "-"
    whole, hundredths = divmod(int(basis_points), 100)
    return f"{whole}.{hundredths:02d} %"


_GROUPED = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


def parse_typed_units(text: object, decimals: int, symbol: str = "") -> int:
    """What a person types in a form, in token units: as `parse_units`, and also written the way
    `display_units` shows it (thousands separators, the symbol after it). A comma that is no thousands
    separator is refused ("1,5" is never read as 15); too many decimals says what the token has."""
    if isinstance(text, str):
        text = text.strip()
        if symbol and text.endswith(symbol):
            text = text.removesuffix(symbol).strip()
        if "," in text:
            if not _GROUPED.match(text):
                raise AmountError('a comma only separates thousands (e.g. 5,000.50); the decimal point is "."')
            text = text.replace(",", "")
    try:
        return parse_units(text, decimals)
    except TooManyDecimals as exc:
        raise TooManyDecimals(f"{exc}: {symbol or 'the token'} has {decimals} decimals") from None
