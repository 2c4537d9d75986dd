"""Admin for operators: agreements with on-chain state and delivery history, deliveries with attempts,
resend one / resend all failed since a time, inbound events (reprocess), payment cancellation.

Every write goes through a service, so the admin obeys the same status graph and outbox rules as
the API. Amounts are shown and typed in currency units (`1,250.50 EUR`, `payouts.units`), stored in
base units.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from agreements.models import (
    Agreement,
    AgreementBlockchainLog,
    AgreementPayment,
    InboundBlockchainEvent,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)
from agreements.services import agreements as agreement_services
from agreements.services import inbound as inbound_services
from agreements.services import outbound as outbound_services
from config.errors import DomainError
from config.roles import OperatorInline, OperatorModelAdmin, is_approver
from config.states import IllegalTransition
from payouts.units import AmountError, display_units, parse_typed_units


def _amount(value: Any, agreement: Agreement) -> str:
    return display_units(value, agreement.decimals, agreement.currency)


class _AmountInUnitsForm(forms.ModelForm):  # type: ignore[type-arg]
    """`amount` typed and shown in currency units (1,250.50), stored in base units; more decimals than the
    currency has are refused on the field."""

    amount = forms.CharField(help_text="In currency units (e.g. 1,250.50), not base units.")

    def currency_of(self, data: dict[str, Any]) -> tuple[int, str] | None:
        """(decimals, currency) of the amount: from the submitted `data`, else from the saved row."""
        raise NotImplementedError

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        known = self.currency_of({}) if self.instance.pk else None
        if known is not None:
            self.initial["amount"] = display_units(self.instance.amount, known[0], separators=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        known = self.currency_of(data)
        if "amount" in data and known is not None:
            decimals, currency = known
            try:
                data["amount"] = parse_typed_units(data["amount"], decimals, currency)
            except AmountError as exc:
                self.add_error("amount", str(exc))
        return data


class AgreementForm(_AmountInUnitsForm):
    class Meta:
        model = Agreement
        fields = (*Agreement.PARTIES, *Agreement.TERMS)

    def currency_of(self, data: dict[str, Any]) -> tuple[int, str] | None:
        decimals = data.get("decimals", self.instance.decimals if self.instance.pk else None)
        currency = data.get("currency", self.instance.currency)
        return None if decimals is None else (int(decimals), str(currency or ""))


class AgreementPaymentForm(_AmountInUnitsForm):
    class Meta:
        model = AgreementPayment
        fields = ("agreement", "due_date", "amount")

    def currency_of(self, data: dict[str, Any]) -> tuple[int, str] | None:
        agreement = data.get("agreement") or (self.instance.agreement if self.instance.agreement_id else None)
        return None if agreement is None else (agreement.decimals, agreement.currency)


class _ReadOnlyInline(OperatorInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PaymentInline(_ReadOnlyInline):
    model = AgreementPayment

    @admin.display(description="amount")
    def amount_display(self, obj: AgreementPayment) -> str:
        return _amount(obj.amount, obj.agreement)

    fields = ("due_date", "amount_display", "status", "paid_at", "cancelled_at", "cancel_reason")
    readonly_fields = fields


class BlockchainLogInline(_ReadOnlyInline):
    model = AgreementBlockchainLog
    fields = ("event_type", "tx_hash", "tx_block_number", "tx_block_timestamp", "contract_address", "data")
    readonly_fields = fields


class DeliveryInline(_ReadOnlyInline):
    model = WebhookDelivery
    fields = (
        "event_type",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_error",
        "created_at",
        "completed_at",
    )
    readonly_fields = fields
    ordering = ["-created_at"]


def _transition_action(target: str) -> Any:
    def action(modeladmin: AgreementAdmin, request: HttpRequest, queryset: QuerySet[Agreement]) -> None:
        moved, refused = 0, []
        for agreement_id in queryset.values_list("id", flat=True):
            try:
                agreement_services.agreement_transition(agreement_id=agreement_id, target=target)
                moved += 1
            except IllegalTransition as exc:
                refused.append(f"{agreement_id}: {exc}")
        if moved:
            modeladmin.message_user(request, f"{moved} agreement(s) moved to {target}.", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, line, messages.WARNING)

    action.__name__ = f"move_to_{target.lower()}"
    return admin.action(description=f"Move selected agreements to {target}")(action)


@admin.register(Agreement)
class AgreementAdmin(OperatorModelAdmin):
    form = AgreementForm
    list_display = ["id", "status", "amount_in_units", "repayment_end_date", "tx_hash", "created_at"]
    list_filter = ["status", "currency"]
    search_fields = ["id", "creditor_id", "debtor_id", "tx_hash", "contract_address"]
    readonly_fields = [
        "id",
        "status",
        "status_changed_at",
        "tx_hash",
        "tx_block_number",
        "tx_block_timestamp",
        "contract_address",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["id", "status", "status_changed_at", "creditor_id", "debtor_id"]}),
        ("Terms", {"fields": list(Agreement.TERMS)}),
        ("On chain", {"fields": ["tx_hash", "tx_block_number", "tx_block_timestamp", "contract_address"]}),
        ("Timestamps", {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [PaymentInline, BlockchainLogInline, DeliveryInline]
    actions = [_transition_action(status) for status in Agreement.Status.values if status != Agreement.Status.DRAFT]

    @admin.display(description="amount")
    def amount_in_units(self, obj: Agreement) -> str:
        return _amount(obj.amount, obj)

    def has_change_permission(self, request: HttpRequest, obj: Agreement | None = None) -> bool:
        # Terms are frozen once the agreement left DRAFT; status moves only through the actions.
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)

    def has_delete_permission(self, request: HttpRequest, obj: Agreement | None = None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_editable)


@admin.register(AgreementPayment)
class AgreementPaymentAdmin(OperatorModelAdmin):
    form = AgreementPaymentForm
    list_display = ["id", "agreement", "due_date", "amount_display", "status"]
    list_select_related = ["agreement"]
    list_filter = ["status"]
    readonly_fields = ["status", "paid_at", "cancelled_at", "cancel_reason"]
    actions = ["cancel_payments"]

    @admin.display(description="amount")
    def amount_display(self, obj: AgreementPayment) -> str:
        return _amount(obj.amount, obj.agreement)

    @admin.action(description="Cancel selected payments (notifies the blockchain service)")
    def cancel_payments(self, request: HttpRequest, queryset: QuerySet[AgreementPayment]) -> None:
        cancelled = 0
        for payment_id in queryset.values_list("id", flat=True):
            try:
                agreement_services.payment_cancel(payment_id=payment_id, reason=f"cancelled by {request.user}")
                cancelled += 1
            except IllegalTransition as exc:
                self.message_user(request, f"{payment_id}: {exc}", messages.WARNING)
        self.message_user(request, f"{cancelled} payment(s) cancelled.", messages.SUCCESS)


@admin.register(AgreementBlockchainLog)
class AgreementBlockchainLogAdmin(OperatorModelAdmin):
    list_display = ["tx_hash", "event_type", "agreement", "tx_block_number", "tx_block_timestamp"]
    list_filter = ["event_type"]
    search_fields = ["tx_hash", "agreement__id", "contract_address"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AttemptInline(_ReadOnlyInline):
    model = WebhookDeliveryAttempt
    show_change_link = False
    fields = ("attempted_at", "response_status", "duration_ms", "error", "response_body", "request_headers")
    readonly_fields = fields


class ResendFailedForm(forms.Form):
    since = forms.SplitDateTimeField(help_text="Resend every delivery that ended FAILED at or after this time (UTC).")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OperatorModelAdmin):
    list_display = ["id", "event_type", "agreement", "status", "attempt_count", "next_attempt_at", "created_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["id", "agreement__id"]
    readonly_fields = [
        "id",
        "agreement",
        "event_type",
        "payload",
        "status",
        "attempt_count",
        "next_attempt_at",
        "locked_until",
        "last_error",
        "created_at",
        "completed_at",
        "alert_due_at",
    ]
    inlines = [AttemptInline]
    actions = ["resend"]
    change_list_template = "admin/agreements/webhookdelivery/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # delivery history is never deleted

    @admin.action(description="Resend selected deliveries")
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        resent = 0
        for delivery_id in queryset.values_list("id", flat=True):
            try:
                outbound_services.webhook_delivery_resend(delivery_id=delivery_id)
                resent += 1
            except IllegalTransition as exc:
                self.message_user(request, f"{delivery_id}: {exc}", messages.WARNING)
        self.message_user(request, f"{resent} delivery(ies) queued again.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "resend-failed/",
                self.admin_site.admin_view(self.resend_failed_view),
                name="agreements_webhookdelivery_resend_failed",
            )
        ]
        return custom + super().get_urls()

    def resend_failed_view(self, request: HttpRequest) -> HttpResponse:
        if not is_approver(request.user):  # resending is a change: approvers only
            return HttpResponseRedirect(reverse("admin:index"))
        form = ResendFailedForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            ids = outbound_services.webhook_deliveries_resend_failed(since=form.cleaned_data["since"])
            self.message_user(request, f"{len(ids)} failed delivery(ies) queued again.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:agreements_webhookdelivery_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Resend failed deliveries",
        }
        return TemplateResponse(request, "admin/agreements/webhookdelivery/resend_failed.html", context)


@admin.register(InboundBlockchainEvent)
class InboundBlockchainEventAdmin(OperatorModelAdmin):
    list_display = ["id", "type", "agreement_id", "tx_hash", "status", "attempt_count", "received_at"]
    list_filter = ["status", "type"]
    search_fields = ["id", "tx_hash", "webhook_id", "agreement_id"]
    actions = ["reprocess"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Reprocess selected FAILED events")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[InboundBlockchainEvent]) -> None:
        reopened = skipped = 0
        for event_id in queryset.values_list("id", flat=True):
            try:
                inbound_services.blockchain_event_reprocess(event_id=event_id)
                reopened += 1
            except DomainError:  # not FAILED (the service says which may be reprocessed), or gone
                skipped += 1
        self.message_user(request, f"{reopened} event(s) queued again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} event(s) skipped: only FAILED events are reprocessed.")
