"""Bodies of the webhooks we send to the blockchain service, and their exact bytes on the wire.

`moneyGuard.createIOU` carries the full agreement (creation and progress: BEFORE_PROGRESS,
IN_PROGRESS, OVERDUE); `moneyGuard.updateIOUData` carries the agreement id and `COMPLETED` or
`CANCELLED`. Amounts are decimal strings in currency units, rates decimal strings (percent),
dates ISO 8601 (`YYYY-MM-DD`); no floats anywhere.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from agreements.models import Agreement

CREATE_IOU = "moneyGuard.createIOU"
UPDATE_IOU_DATA = "moneyGuard.updateIOUData"


def to_units(base_units: int | Decimal, decimals: int) -> str:
    """Base units to a plain decimal string in currency units (1234, 2 -> "12.34")."""
    value = Decimal(int(base_units)).scaleb(-decimals)
    return f"{value:.{decimals}f}"


def from_units(text: str | Decimal, decimals: int) -> int:
    """A decimal string in currency units to base units; refuses more precision than `decimals`."""
    value = Decimal(str(text)).scaleb(decimals)
    if value != value.to_integral_value():
        raise ValueError(f"at most {decimals} decimal places")
    return int(value)


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
