"""Response shapes of the chain API. Wei amounts (value, fees) are decimal strings: JSON numbers lose
precision above 2^53."""

from __future__ import annotations

from typing import ClassVar

from rest_framework import serializers

from chain.lane.models import ChainTransaction, SignedVersion


class SignedVersionSerializer(serializers.ModelSerializer[SignedVersion]):
    max_fee_per_gas = serializers.CharField(read_only=True)
    max_priority_fee_per_gas = serializers.CharField(read_only=True)

    class Meta:
        model = SignedVersion
        fields: ClassVar[list[str]] = [
            "tx_hash",
            "nonce",
            "is_cancel",
            "gas_limit",
            "max_fee_per_gas",
            "max_priority_fee_per_gas",
            "created_at",
            "broadcast_at",
        ]
        read_only_fields = fields


class ChainTransactionSerializer(serializers.ModelSerializer[ChainTransaction]):
    value = serializers.CharField(read_only=True)
    max_fee_per_gas = serializers.CharField(read_only=True, allow_null=True)
    max_priority_fee_per_gas = serializers.CharField(read_only=True, allow_null=True)
    versions = SignedVersionSerializer(
        many=True, read_only=True, help_text="Newest first: the first is the current one."
    )

    class Meta:
        model = ChainTransaction
        fields: ClassVar[list[str]] = [
            "id",
            "intent_key",
            "purpose",
            "status",
            "chain_id",
            "sender",
            "to",
            "value",
            "nonce",
            "gas_limit",
            "max_fee_per_gas",
            "max_priority_fee_per_gas",
            "tx_hash",
            "block_number",
            "gas_used",
            "error",
            "attempts",
            "handler_error",
            "handler_attempts",
            "cancel_requested_at",
            "created_at",
            "signed_at",
            "broadcast_at",
            "finished_at",
            "versions",
        ]
        read_only_fields = fields
