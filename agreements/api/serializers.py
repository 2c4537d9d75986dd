"""Serializers: validate API input into plain values, and render models (amounts as decimal strings)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agreements.models import (
    Agreement,
    AgreementBlockchainLog,
    AgreementPayment,
    InboundBlockchainEvent,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)
from agreements.payloads import AmountTooLarge, from_units, to_units

MAX_DECIMALS = 36


@extend_schema_field({"type": "string", "pattern": r"^\d+(\.\d+)?$", "example": "1234.56"})
class UnitsAmountField(serializers.Field[Decimal, str, str, Any]):
    """An amount in currency units as a decimal string ("1234.56"); numbers are refused (no floats)."""

    default_error_messages = {
        "invalid": 'Send the amount as a decimal string in currency units, e.g. "1234.56".',
        "positive": "Must be greater than zero.",
    }

    def to_internal_value(self, data: object) -> Decimal:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            value = Decimal(data.strip())
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        if value <= 0:
            self.fail("positive")
        return value

    def to_representation(self, value: Decimal) -> str:
        return str(value)


def _base_units(amount: Decimal, decimals: int, field: str) -> int:
    try:
        return from_units(amount, decimals)
    except AmountTooLarge as exc:
        raise serializers.ValidationError({field: [f"Too large: {exc}."]}) from None
    except ValueError:
        raise serializers.ValidationError({field: [f"At most {decimals} decimal places for this currency."]}) from None


class AgreementInputSerializer(serializers.Serializer[Any]):
    creditor_id = serializers.UUIDField()
    debtor_id = serializers.UUIDField()
    amount = UnitsAmountField()
    currency = serializers.RegexField(r"^[A-Za-z0-9]{1,16}$", max_length=16)
    decimals = serializers.IntegerField(min_value=0, max_value=MAX_DECIMALS, default=2)
    interest_rate = serializers.DecimalField(
        max_digits=9, decimal_places=4, min_value=Decimal(0), max_value=Decimal(1000), coerce_to_string=True
    )
    interest_payment_date = serializers.DateField(required=False, allow_null=True)
    repayment_start_date = serializers.DateField()
    repayment_end_date = serializers.DateField()
    document_url = serializers.URLField(max_length=1000, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance: Agreement | None = self.context.get("agreement")
        start = attrs.get("repayment_start_date", instance.repayment_start_date if instance else None)
        end = attrs.get("repayment_end_date", instance.repayment_end_date if instance else None)
        if start and end and end < start:
            raise serializers.ValidationError({"repayment_end_date": ["Must be on or after repayment_start_date."]})
        if "amount" in attrs or "decimals" in attrs:
            decimals = attrs.get("decimals", instance.decimals if instance else 2)
            amount = attrs.get("amount", Decimal(to_units(instance.amount, instance.decimals)) if instance else None)
            if amount is not None:
                attrs["amount"] = _base_units(amount, decimals, "amount")
        return attrs


class AgreementTransitionSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=Agreement.Status.choices)


class AgreementSerializer(serializers.ModelSerializer[Agreement]):
    amount = serializers.SerializerMethodField()
    on_chain = serializers.SerializerMethodField()
    allowed_transitions = serializers.SerializerMethodField()

    class Meta:
        model = Agreement
        fields = [
            "id",
            *Agreement.PARTIES,
            *Agreement.TERMS,
            "status",
            "status_changed_at",
            "allowed_transitions",
            "on_chain",
            "created_at",
            "updated_at",
        ]

    def get_amount(self, obj: Agreement) -> str:
        return to_units(obj.amount, obj.decimals)

    def get_allowed_transitions(self, obj: Agreement) -> list[str]:
        return sorted(obj.MOVES.targets(obj.status))

    def get_on_chain(self, obj: Agreement) -> dict[str, Any] | None:
        if not obj.tx_hash:
            return None
        return {
            "tx_hash": obj.tx_hash,
            "tx_block_number": obj.tx_block_number,
            "tx_block_timestamp": obj.tx_block_timestamp.isoformat() if obj.tx_block_timestamp else None,
            "contract_address": obj.contract_address,
        }


class PaymentInputSerializer(serializers.Serializer[Any]):
    due_date = serializers.DateField()
    amount = UnitsAmountField()


class PaymentCancelSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PaymentSerializer(serializers.ModelSerializer[AgreementPayment]):
    amount = serializers.SerializerMethodField()

    class Meta:
        model = AgreementPayment
        fields = ["id", "agreement", "due_date", "amount", "status", "paid_at", "cancelled_at", "cancel_reason"]

    def get_amount(self, obj: AgreementPayment) -> str:
        return to_units(obj.amount, obj.agreement.decimals)


class BlockchainLogSerializer(serializers.ModelSerializer[AgreementBlockchainLog]):
    class Meta:
        model = AgreementBlockchainLog
        fields = [
            "id",
            "event_type",
            "agreement",
            "tx_hash",
            "tx_block_number",
            "tx_block_timestamp",
            "contract_address",
            "data",
            "created_at",
        ]


class DeliveryAttemptSerializer(serializers.ModelSerializer[WebhookDeliveryAttempt]):
    class Meta:
        model = WebhookDeliveryAttempt
        fields = [
            "id",
            "attempted_at",
            "url",
            "request_headers",
            "response_status",
            "response_body",
            "duration_ms",
            "error",
            "succeeded",
        ]


class DeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "agreement",
            "event_type",
            "payload",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_error",
            "created_at",
            "completed_at",
            "attempts",
        ]


class DeliveryListQuerySerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)
    agreement = serializers.UUIDField(required=False)


class ResendFailedSerializer(serializers.Serializer[Any]):
    since = serializers.DateTimeField()


class StatusQuerySerializer(serializers.Serializer[Any]):
    status = serializers.CharField(required=False)

    def validate_status(self, value: str) -> str:
        choices = self.context["choices"]
        if value not in choices:
            raise serializers.ValidationError(f"Must be one of {', '.join(choices)}.")
        return value


class InboundEventSerializer(serializers.ModelSerializer[InboundBlockchainEvent]):
    class Meta:
        model = InboundBlockchainEvent
        fields = [
            "id",
            "webhook_id",
            "type",
            "agreement_id",
            "tx_hash",
            "payload",
            "status",
            "attempt_count",
            "last_error",
            "received_at",
            "processed_at",
        ]
