"""Bodies of the webhooks we send to the blockchain service, and their exact bytes on the wire.

`moneyGuard.createIOU` carries the full agreement (creation and progress: BEFORE_PROGRESS,
IN_PROGRESS, OVERDUE); `moneyGuard.updateIOUData` carries the agreement id and `COMPLETED` or
`CANCELLED`. Amounts are decimal strings in currency units, rates decimal strings (percent),
dates ISO 8601 (`YYYY-MM-DD`); no floats anywhere.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

from agreements.models import Agreement

CREATE_IOU = "moneyGuard.createIOU"
UPDATE_IOU_DATA = "moneyGuard.updateIOUData"


# Decimal arithmetic that never rounds (the default context keeps 28 digits, amounts have up to 78).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

AMOUNT_DIGITS = 78
"""Digits of an amount in base units: `Agreement.amount` and `AgreementPayment.amount` are numeric(78, 0)."""

MAX_AMOUNT = 10**AMOUNT_DIGITS - 1


class AmountTooLarge(ValueError):
    """More base units than the amount columns hold."""


def to_units(base_units: int | Decimal, decimals: int) -> str:
    """Base units to a plain decimal string in currency units (1234, 2 -> "12.34")."""
    value = Decimal(int(base_units)).scaleb(-decimals, context=_EXACT)
    return f"{value:.{decimals}f}"


def from_units(text: str | Decimal, decimals: int) -> int:
    """A decimal string in currency units to base units, exactly.

    Raises ValueError for more precision than `decimals` (however many digits down) and
    AmountTooLarge past `MAX_AMOUNT` base units, both before any big integer is built.
    """
    value = Decimal(str(text))
    if not value.is_finite():
        raise ValueError("not a finite number")
    if value and value.adjusted() + decimals >= AMOUNT_DIGITS:
        raise AmountTooLarge(f"at most {to_units(MAX_AMOUNT, decimals)} in currency units")
    scaled = value.scaleb(decimals, context=_EXACT)
    if scaled != scaled.to_integral_value(context=_EXACT):
        raise ValueError(f"at most {decimals} decimal places")
    return int(scaled)


def agreement_event_body(agreement: Agreement, *, status: str, now: datetime) -> dict[str, Any] | None:
    """The body announcing `agreement` in `status`, or None when nothing is to be sent (DRAFT)."""
    timestamp = int(now.timestamp())
    if status in Agreement.ANNOUNCED_WITH_DETAILS:
        return {
            "type": CREATE_IOU,
            "timestamp": timestamp,
            "data": {
                "agreement_id": str(agreement.id),
                "amount": to_units(agreement.amount, agreement.decimals),
                "interest_rate": str(agreement.interest_rate),
                "interest_payment_date": (
                    agreement.interest_payment_date.isoformat() if agreement.interest_payment_date else None
                ),
                "repayment_start_date": agreement.repayment_start_date.isoformat(),
                "repayment_end_date": agreement.repayment_end_date.isoformat(),
                "pdf_file_url": agreement.document_url,
                "creditor_id": str(agreement.creditor_id),
                "debtor_id": str(agreement.debtor_id),
            },
        }
    if status in (Agreement.Status.COMPLETED, Agreement.Status.CANCELLED):
        return {
            "type": UPDATE_IOU_DATA,
            "timestamp": timestamp,
            "data": {"agreement_id": str(agreement.id), "event_type": str(status)},
        }
    return None


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent: compact JSON with sorted keys, identical on every retry."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
