"""Request validation and response shapes. Amounts are decimal strings in token units both ways.

Requests are strict: unknown fields, unknown enum values, malformed or over-precise amounts,
amounts above a uint256 in base units and unknown time zones are 400s here. A time sent without an
offset is read in the series' `time_zone` (UTC when none). Business rules (zero amounts,
percentages outside 0.01..100, times in the past, fields a distribution does not take) are checked
by the service, once, and answered as the same 400 naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from chain.hedera import HederaIdError, ledger_ids, parse_address_input
from payouts import gateway
from payouts.models import Asset, AssetHolder, BatchPayout, Distribution, FundsWithdrawal, HolderPayment
from payouts.recurrence import known_time_zone, local_instant, zone
from payouts.units import AmountError, format_units, parse_units

# Decimal arithmetic that never rounds: the default context keeps 28 digits, and a 29th digit a
# client sent must be refused as over-precise, not rounded away.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


class StrictSerializer(serializers.Serializer[Any]):
    """Refuses fields it does not know (a typo must not silently change what gets paid)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["expected a JSON object"]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class AddressField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            return gateway.normalize(text)
        except (ValueError, TypeError):
            raise serializers.ValidationError("not a valid 0x address") from None


class ContractAddressField(serializers.CharField):
    """A token or contract: a 0x address or a Hedera id (`0.0.4431`, optionally with its HIP-15
    checksum `0.0.4431-abcde`). Only the form is checked here; the service resolves an id through
    the Mirror Node (and refuses one it does not know)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 80)
        kwargs.setdefault("help_text", "A 0x address or a Hedera id (shard.realm.num, optionally with its checksum).")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            parse_address_input(text, ledgers=ledger_ids(settings.HEDERA_LEDGER_ID))
        except HederaIdError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return text


class AssetImportSerializer(StrictSerializer):
    token_address = ContractAddressField()
    payment_token_address = ContractAddressField(required=False)
    payout_contract_address = ContractAddressField(required=False)
    name = serializers.CharField(required=False, max_length=200)


def _positive_decimal(text: Any, field: str) -> Decimal:
    if not isinstance(text, str):
        raise serializers.ValidationError({field: ['send it as a decimal string, e.g. "12.5"']})
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise serializers.ValidationError({field: ["not a number"]}) from None
    if not value.is_finite() or "e" in text.lower():
        raise serializers.ValidationError({field: ["not a plain decimal number"]})
    return value


class WallClockDateTimeField(serializers.DateTimeField):
    """Keeps a time sent without an offset naive, so that it can be read in the series' time zone."""

    def enforce_timezone(self, value: datetime) -> datetime:
        return value if timezone.is_naive(value) else super().enforce_timezone(value)


TIME_ZONE_HELP = (
    "RECURRING only: the IANA time zone whose wall clock the series keeps (default UTC), e.g. Europe/Madrid: "
    "a daily 09:00 stays 09:00 there across daylight-saving changes. A time that does not exist there (the "
    "clocks jump over it) runs when the clocks jump; a time that exists twice runs at the earlier one."
)


class DistributionCreateSerializer(StrictSerializer):
    distribution_type = serializers.ChoiceField(
        choices=[Distribution.Type.PAYOUT, Distribution.Type.BOND_CASH_OUT], default=Distribution.Type.PAYOUT
    )
    subtype = serializers.ChoiceField(choices=Distribution.Subtype.choices)
    amount_type = serializers.ChoiceField(choices=Distribution.AmountType.choices)
    amount = serializers.JSONField(required=False)
    percentage = serializers.JSONField(required=False)
    amount_per_token = serializers.JSONField(required=False)
    concept = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    scheduled_at = WallClockDateTimeField(
        required=False,
        help_text="ONE_OFF and RECURRING: a future time; without an offset it is read in `time_zone` (else UTC).",
    )
    recurrence = serializers.ChoiceField(choices=Distribution.Recurrence.choices, required=False)
    catch_up = serializers.ChoiceField(
        choices=Distribution.CatchUp.values,
        required=False,
        help_text="RECURRING only: what to do with occurrences missed while the system was down or the "
        "asset paused. latest (default): run the latest, skip the rest; all: run every one; none: skip them all.",
        error_messages={"invalid_choice": f"must be one of {', '.join(Distribution.CatchUp.values)}"},
    )
    time_zone = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text=TIME_ZONE_HELP)

    def validate_time_zone(self, value: str) -> str:
        if not known_time_zone(value):
            raise serializers.ValidationError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Madrid or UTC"
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Translate only: amounts to base units, the percentage to basis points, a wall-clock time
        to an instant. Which fields a distribution takes, and their bounds, are the service's rules
        (`distribution_create`), answered as a 400 naming the field like the errors found here."""
        asset: Asset = self.context["asset"]
        errors: dict[str, list[str]] = {}
        out = dict(attrs)
        for field in ("amount", "amount_per_token"):
            if field in attrs:
                try:
                    out[field] = parse_units(attrs[field], asset.payment_token_decimals)
                except AmountError as exc:
                    errors[field] = [str(exc)]
        if "percentage" in attrs:
            out.pop("percentage")
            try:
                percentage = _positive_decimal(attrs["percentage"], "percentage")
            except serializers.ValidationError as exc:
                errors.update(exc.detail)  # type: ignore[arg-type]
            else:
                bps = percentage.scaleb(2, context=_EXACT)
                if bps != bps.to_integral_value():
                    errors["percentage"] = ["at most 2 decimal places (0.01 %)"]
                else:
                    out["percentage_bps"] = int(bps)
        scheduled_at = attrs.get("scheduled_at")
        if scheduled_at is not None and timezone.is_naive(scheduled_at):
            out["scheduled_at"] = local_instant(
                scheduled_at, zone(attrs["time_zone"]) if attrs.get("time_zone") else UTC
            )
        if errors:
            raise serializers.ValidationError(errors)
        out["recurrence"] = attrs.get("recurrence", "")
        return out


def _units(value: int | None, decimals: int) -> str | None:
    return format_units(value, decimals)


HEDERA_ID_HELP = "Its Hedera entity id (shard.realm.num) where known (given, or found on the Mirror Node); else null."


class AssetSerializer(serializers.ModelSerializer[Asset]):
    token_address = serializers.SerializerMethodField()
    hedera_token_id = serializers.CharField(read_only=True, allow_null=True, help_text=HEDERA_ID_HELP)
    payout_contract_address = serializers.SerializerMethodField()
    hedera_payout_contract_id = serializers.CharField(read_only=True, allow_null=True, help_text=HEDERA_ID_HELP)
    payment_token_address = serializers.SerializerMethodField()
    hedera_payment_token_id = serializers.CharField(read_only=True, allow_null=True, help_text=HEDERA_ID_HELP)

    class Meta:
        model = Asset
        fields = (
            "id",
            "name",
            "symbol",
            "token_address",
            "hedera_token_id",
            "asset_type",
            "decimals",
            "maturity_date",
            "payout_contract_address",
            "hedera_payout_contract_id",
            "payment_token_address",
            "hedera_payment_token_id",
            "payment_token_decimals",
            "is_paused",
            "pause_state",
            "pause_error",
            "sync_enabled",
            "sync_status",
            "last_synced_at",
            "sync_error",
            "holders_count",
            "created_at",
        )

    def get_token_address(self, asset: Asset) -> str:
        return gateway.checksum(asset.token_address)

    def get_payout_contract_address(self, asset: Asset) -> str | None:
        return gateway.checksum(asset.payout_contract_address) if asset.payout_contract_address else None

    def get_payment_token_address(self, asset: Asset) -> str:
        return gateway.checksum(asset.payment_token_address)


class HolderSerializer(serializers.ModelSerializer[AssetHolder]):
    address = serializers.SerializerMethodField()
    balance = serializers.SerializerMethodField()

    class Meta:
        model = AssetHolder
        fields = ("address", "balance", "balance_block", "updated_at")

    def get_address(self, holder: AssetHolder) -> str:
        return gateway.checksum(holder.address)

    def get_balance(self, holder: AssetHolder) -> str | None:
        return _units(holder.balance, self.context["asset"].decimals)


class DistributionSerializer(serializers.ModelSerializer[Distribution]):
    asset_id = serializers.UUIDField(read_only=True)
    amount = serializers.SerializerMethodField()
    percentage = serializers.SerializerMethodField()
    amount_per_token = serializers.SerializerMethodField()
    computed_total = serializers.SerializerMethodField()
    paid_amount = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    execution_seconds = serializers.SerializerMethodField()
    catch_up = serializers.SerializerMethodField()
    time_zone = serializers.SerializerMethodField()
    cancel_scope = serializers.SerializerMethodField()

    class Meta:
        model = Distribution
        fields = (
            "id",
            "asset_id",
            "distribution_type",
            "subtype",
            "corporate_action",
            "amount_type",
            "amount",
            "percentage",
            "amount_per_token",
            "computed_total",
            "paid_amount",
            "concept",
            "scheduled_at",
            "recurrence",
            "catch_up",
            "time_zone",
            "occurrence",
            "series_id",
            "status",
            "status_reason",
            "cancel_scope",
            "holders_count",
            "batches_count",
            "batch_size",
            "progress",
            "chain_distribution_id",
            "snapshot_block",
            "error",
            "started_at",
            "finished_at",
            "execution_seconds",
            "created_at",
        )

    def _decimals(self, distribution: Distribution) -> int:
        return distribution.asset.payment_token_decimals

    def get_amount(self, d: Distribution) -> str | None:
        return _units(d.amount, self._decimals(d))

    def get_percentage(self, d: Distribution) -> str | None:
        return None if d.percentage_bps is None else format_units(d.percentage_bps, 2)

    def get_amount_per_token(self, d: Distribution) -> str | None:
        return _units(d.amount_per_token, self._decimals(d))

    def get_computed_total(self, d: Distribution) -> str | None:
        return _units(d.computed_total, self._decimals(d))

    def get_paid_amount(self, d: Distribution) -> str | None:
        return _units(d.paid_amount, self._decimals(d))

    def get_progress(self, d: Distribution) -> dict[str, int]:
        return {
            "paid": d.paid_count,
            "failed": d.failed_count,
            "pending": d.pending_count,
            "percent": d.progress_percent,
        }

    def get_catch_up(self, d: Distribution) -> str | None:
        # Only a recurring series misses occurrences; elsewhere the stored default means nothing.
        return d.catch_up if d.subtype == Distribution.Subtype.RECURRING else None

    def get_time_zone(self, d: Distribution) -> str | None:
        # Only a recurring series is computed on a wall clock; elsewhere the stored default means nothing.
        return d.time_zone if d.subtype == Distribution.Subtype.RECURRING else None

    def get_cancel_scope(self, d: Distribution) -> str | None:
        return d.cancel_scope or None

    def get_execution_seconds(self, d: Distribution) -> float | None:
        return None if d.execution_duration is None else d.execution_duration.total_seconds()


class DistributionCancelSerializer(StrictSerializer):
    scope = serializers.ChoiceField(
        choices=Distribution.CancelScope.values,
        default=Distribution.CancelScope.OCCURRENCE,
        help_text="occurrence (default): this SCHEDULED distribution only; a series goes on with its next "
        "occurrence at its own time. series: every SCHEDULED occurrence of its series (any occurrence may "
        "be named; a running one finishes); no occurrence of it is ever created again.",
        error_messages={"invalid_choice": f"must be one of {', '.join(Distribution.CancelScope.values)}"},
    )


class BatchSerializer(serializers.ModelSerializer[BatchPayout]):
    class Meta:
        model = BatchPayout
        fields = (
            "number",
            "holders_count",
            "status",
            "attempts",
            "chain_batch_id",
            "chain_transaction_id",
            "tx_hash",
            "nonce",
            "paid_count",
            "failed_count",
            "error",
            "submitted_at",
            "confirmed_at",
        )


@extend_schema_serializer(component_name="HolderPayment")  # agreements' payments are `Payment`
class PaymentSerializer(serializers.ModelSerializer[HolderPayment]):
    holder_address = serializers.SerializerMethodField()
    balance = serializers.SerializerMethodField()
    amount = serializers.SerializerMethodField()

    class Meta:
        model = HolderPayment
        fields = (
            "holder_address",
            "batch_number",
            "balance",
            "amount",
            "status",
            "retry_count",
            "last_error",
            "next_retry_at",
            "tx_hash",
            "updated_at",
        )

    def get_holder_address(self, p: HolderPayment) -> str:
        return gateway.checksum(p.holder_address)

    def get_balance(self, p: HolderPayment) -> str | None:
        return _units(p.balance, self.context["distribution"].asset.decimals)

    def get_amount(self, p: HolderPayment) -> str | None:
        return _units(p.amount, self.context["distribution"].asset.payment_token_decimals)


class WithdrawalCreateSerializer(StrictSerializer):
    to_address = AddressField()
    amount = serializers.JSONField(help_text='payment-token units as a decimal string, e.g. "250.5"')

    def validate_amount(self, value: Any) -> int:
        asset: Asset = self.context["asset"]
        try:
            amount = parse_units(value, asset.payment_token_decimals)
        except AmountError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return amount  # zero is refused by the service (`funds_withdraw`)


class WithdrawalSerializer(serializers.ModelSerializer[FundsWithdrawal]):
    asset_id = serializers.UUIDField(read_only=True)
    to_address = serializers.SerializerMethodField()
    amount = serializers.SerializerMethodField()

    class Meta:
        model = FundsWithdrawal
        fields = (
            "id",
            "asset_id",
            "to_address",
            "amount",
            "status",
            "chain_transaction_id",
            "tx_hash",
            "error",
            "created_at",
            "finished_at",
        )

    def get_to_address(self, w: FundsWithdrawal) -> str:
        return gateway.checksum(w.to_address)

    def get_amount(self, w: FundsWithdrawal) -> str | None:
        return _units(w.amount, w.asset.payment_token_decimals)
