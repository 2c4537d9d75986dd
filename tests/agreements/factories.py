"""factory_boy factories for the agreements app (use `.create(...)`, which is typed)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from factory.declarations import LazyFunction, SubFactory
from factory.django import DjangoModelFactory

from agreements.models import Agreement, AgreementPayment


class AgreementFactory(DjangoModelFactory[Agreement]):
    class Meta:
        model = Agreement

    creditor_id = LazyFunction(uuid.uuid4)  # type: ignore[no-untyped-call]
    debtor_id = LazyFunction(uuid.uuid4)  # type: ignore[no-untyped-call]
    amount = 1_000_000  # 10,000.00 in cents
    currency = "EUR"
    decimals = 2
    interest_rate = Decimal("4.5000")
    interest_payment_date = dt.date(2026, 6, 1)
    repayment_start_date = dt.date(2026, 1, 1)
    repayment_end_date = dt.date(2027, 1, 1)
    document_url = "https://docs.example.com/agreement.pdf"
    status = Agreement.Status.DRAFT


class AgreementPaymentFactory(DjangoModelFactory[AgreementPayment]):
    class Meta:
        model = AgreementPayment

    agreement = SubFactory(AgreementFactory)  # type: ignore[no-untyped-call]
    due_date = dt.date(2026, 3, 1)
    amount = 100_000


def agreement_body(**overrides: Any) -> dict[str, Any]:
    """A valid body for `POST /api/v1/agreements/` (fresh parties each call), amounts as units."""
    return {
        "creditor_id": str(uuid.uuid4()),
        "debtor_id": str(uuid.uuid4()),
        "amount": "1234.56",
        "currency": "EUR",
        "decimals": 2,
        "interest_rate": "3.2500",
        "interest_payment_date": "2026-06-01",
        "repayment_start_date": "2026-01-01",
        "repayment_end_date": "2026-12-31",
        "document_url": "https://docs.example.com/a.pdf",
    } | overrides
