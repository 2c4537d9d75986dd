"""factory_boy factories for the agreements app."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import factory

from agreements.models import Agreement, AgreementPayment


class AgreementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agreement

    creditor_id = factory.LazyFunction(uuid.uuid4)
    debtor_id = factory.LazyFunction(uuid.uuid4)
    amount = 1_000_000  # 10,000.00 in cents
    currency = "EUR"
    decimals = 2
    interest_rate = Decimal("4.5000")
    interest_payment_date = dt.date(2026, 6, 1)
    repayment_start_date = dt.date(2026, 1, 1)
    repayment_end_date = dt.date(2027, 1, 1)
    document_url = "https://docs.example.com/agreement.pdf"
    status = Agreement.Status.DRAFT


class AgreementPaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgreementPayment

    agreement = factory.SubFactory(AgreementFactory)
    due_date = dt.date(2026, 3, 1)
    amount = 100_000
