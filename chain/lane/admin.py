"""Admin pages of the submission lane: chain transactions (read-only) with the "replace stuck",
"cancel" and "run handler again" actions, their signed versions, and the nonce row per sender."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from chain.errors import ChainError
from chain.lane.models import ChainTransaction, SenderNonce, SignedVersion
from chain.lane.services import transaction_cancel, transaction_handler_rerun, transaction_replace
from config.roles import OperatorInline, OperatorModelAdmin, is_approver


class ReadOnlyAdmin(OperatorModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SignedVersionInline(OperatorInline):
    model = SignedVersion
    fields = (
        "tx_hash",
        "nonce",
        "max_fee_per_gas",
        "max_priority_fee_per_gas",
        "gas_limit",
        "is_cancel",
        "created_at",
        "broadcast_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class HandlerFailedFilter(admin.SimpleListFilter):
    title = "handler"
    parameter_name = "handler_failed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "failed"), ("no", "ran fine or none")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ChainTransaction]) -> QuerySet[ChainTransaction]:
        if self.value() == "yes":
            return queryset.exclude(handler_error="")
        if self.value() == "no":
            return queryset.filter(handler_error="")
        return queryset


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
        "short_handler_error",
    )
    list_filter = ("status", "purpose", HandlerFailedFilter)
    search_fields = ("intent_key", "tx_hash", "sender", "to", "=id")
    ordering = ("-created_at",)
    inlines = (SignedVersionInline,)
    actions = ("replace_stuck", "cancel_transaction", "run_handler_again")
    readonly_fields = (
        "id", "intent_key", "purpose", "status", "chain_id", "sender", "to", "value", "nonce", "gas_limit",
        "max_fee_per_gas", "max_priority_fee_per_gas", "tx_hash", "block_number", "block_hash", "gas_used", "error",
        "attempts", "handler_error", "handler_attempts", "cancel_requested_at", "created_at", "signed_at",
        "broadcast_at", "finished_at", "data",
    )  # fmt: skip
    fields = readonly_fields

    @admin.display(description="error")
    def short_error(self, obj: ChainTransaction) -> str:
        return obj.error[:80]

    @admin.display(description="handler error")
    def short_handler_error(self, obj: ChainTransaction) -> str:
        return obj.handler_error[:80]

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Acting on a transaction (replace, cancel, run its handler) needs an approver."""
        return is_approver(request.user)

    @admin.action(description="Replace stuck transaction (same nonce, fees +15%%)", permissions=["operate"])
    def replace_stuck(self, request: HttpRequest, queryset: QuerySet[ChainTransaction]) -> None:
        for row in queryset:
            try:
                replaced = transaction_replace(transaction_id=str(row.pk))
            except (ChainError, ValueError) as exc:
                self.message_user(request, f"{row.intent_key}: not replaced ({exc})", messages.ERROR)
                continue
            self.message_user(request, f"{row.intent_key}: now {replaced.status}, current hash {replaced.tx_hash}")

    @admin.action(
        description="Cancel transaction (zero-value transfer to itself at the same nonce; frees a halted lane)",
        permissions=["operate"],
    )
    def cancel_transaction(self, request: HttpRequest, queryset: QuerySet[ChainTransaction]) -> None:
        for row in queryset:
            try:
                after = transaction_cancel(transaction_id=str(row.pk))
            except (ChainError, ValueError) as exc:
                self.message_user(request, f"{row.intent_key}: not cancelled ({exc})", messages.ERROR)
                continue
            if after.is_final:
                self.message_user(
                    request, f"{row.intent_key}: {after.status}, mined before the cancel", messages.WARNING
                )
            else:
                self.message_user(
                    request,
                    f"{row.intent_key}: cancel {after.tx_hash} sent at nonce {after.nonce}; "
                    "it ends CANCELLED once mined (or as mined, if the original wins)",
                )

    @admin.action(description="Run handler again (transactions whose handler failed)", permissions=["operate"])
    def run_handler_again(self, request: HttpRequest, queryset: QuerySet[ChainTransaction]) -> None:
        for row in queryset:
            if not (row.is_final and row.handler_error):
                self.message_user(request, f"{row.intent_key}: nothing to run again (its handler did not fail)")
                continue
            after = transaction_handler_rerun(transaction_id=str(row.pk))
            if after.handler_error:
                message = f"{row.intent_key}: handler failed again ({after.handler_error})"
                self.message_user(request, message, messages.ERROR)
            else:
                self.message_user(request, f"{row.intent_key}: handler ran (attempt {after.handler_attempts})")


@admin.register(SenderNonce)
class SenderNonceAdmin(ReadOnlyAdmin):
    list_display = ("sender", "chain_id", "next_nonce", "updated_at")
