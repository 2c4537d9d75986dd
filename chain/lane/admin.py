"""Admin pages of the submission lane: chain transactions (read-only) with a "replace stuck" action,
their signed versions, and the nonce row per sender."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from chain.errors import ChainError
from chain.lane.models import ChainTransaction, SenderNonce, SignedVersion
from chain.lane.services import transaction_replace


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SignedVersionInline(admin.TabularInline):  # type: ignore[type-arg]
    model = SignedVersion
    fields = (
        "tx_hash",
        "nonce",
        "max_fee_per_gas",
        "max_priority_fee_per_gas",
        "gas_limit",
        "created_at",
        "broadcast_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChainTransaction)
class ChainTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "purpose",
        "status",
        "sender",
        "nonce",
        "tx_hash",
        "block_number",
        "attempts",
        "short_error",
    )
    list_filter = ("status", "purpose")
    search_fields = ("intent_key", "tx_hash", "sender", "to", "=id")
    ordering = ("-created_at",)
    inlines = (SignedVersionInline,)
    actions = ("replace_stuck",)
    readonly_fields = (
        "id", "intent_key", "purpose", "status", "chain_id", "sender", "to", "value", "nonce", "gas_limit",
        "max_fee_per_gas", "max_priority_fee_per_gas", "tx_hash", "block_number", "block_hash", "gas_used", "error",
        "attempts", "created_at", "signed_at", "broadcast_at", "finished_at", "data",
    )  # fmt: skip
    fields = readonly_fields

    @admin.display(description="error")
    def short_error(self, obj: ChainTransaction) -> str:
        return obj.error[:80]

    def has_replace_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("chain.change_chaintransaction"))

    @admin.action(description="Replace stuck transaction (same nonce, fees +15%%)", permissions=["replace"])
    def replace_stuck(self, request: HttpRequest, queryset: QuerySet[ChainTransaction]) -> None:
        for row in queryset:
            try:
                replaced = transaction_replace(transaction_id=str(row.pk))
            except (ChainError, ValueError) as exc:
                self.message_user(request, f"{row.intent_key}: not replaced ({exc})", messages.ERROR)
                continue
            self.message_user(request, f"{row.intent_key}: now {replaced.status}, current hash {replaced.tx_hash}")


@admin.register(SenderNonce)
class SenderNonceAdmin(ReadOnlyAdmin):
    list_display = ("sender", "chain_id", "next_nonce", "updated_at")
