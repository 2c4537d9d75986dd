"""Operator admin for payouts: import assets, create and run distributions, watch their progress.

Every action calls a service (the same ones the API uses). Amounts are shown the one way a person
reads them (`payouts.units.display_units`: `5,000.000000 USDC`) and typed in token units; base units
and the internal bookkeeping columns sit in a collapsed "Internal" section saying what they are.
Lists stay fast on million-row tables: no full COUNT (`show_full_result_count = False`), raw id widgets instead
of huge dropdowns, ordering on indexed columns, exact-match search only, and no inlines of payments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.errors import DomainError, InvalidInput
from config.roles import OperatorModelAdmin, is_approver
from payouts import exports, services
from payouts.models import Asset, AssetHolder, BatchPayout, Distribution, FundsWithdrawal, HolderPayment
from payouts.recurrence import local_instant, time_zone_names, wall_clock_text, zone
from payouts.units import AmountError, display_percent, display_units, parse_typed_units

_INTERNAL = "Internal (bookkeeping; amounts here in base units)"


def payment_units(value: int | None, asset: Asset) -> str:
    """An amount of the asset's payment token, as a person reads it."""
    return display_units(value, asset.payment_token_decimals, asset.payment_token_symbol)


def asset_units(value: int | None, asset: Asset) -> str:
    """An amount of the asset token itself (a holder's balance), as a person reads it."""
    return display_units(value, asset.decimals, asset.symbol)


def clean_payment_amount(form: forms.Form, data: dict[str, Any], field: str = "amount") -> None:
    """Read `field` in the chosen asset's payment-token units into base units, or say on the field what is wrong."""
    asset = data.get("asset")
    if not data.get(field) or asset is None:
        data[field] = None
        return
    try:
        data[field] = parse_typed_units(data[field], asset.payment_token_decimals, asset.payment_token_symbol)
    except AmountError as exc:
        form.add_error(field, str(exc))


RECONCILE_AT_ONCE = 5  # chain reads run in the request
RECONCILE_SHOWN = 200  # differences listed per distribution; the command's --csv has every holder


def _run_each(request: HttpRequest, queryset: Iterable[Any], action: Callable[[Any], object], verb: str) -> None:
    done, refused = 0, []
    for obj in queryset:
        try:
            action(obj)
            done += 1
        except DomainError as exc:
            refused.append(f"{obj}: {exc}")
    if done:
        messages.success(request, f"{verb}: {done}")
    for message in refused:
        messages.warning(request, message)


class AssetImportForm(forms.Form):
    """Each address is a 0x address or a Hedera id (`0.0.4431`), resolved by the service."""

    token_address = forms.CharField(max_length=80, help_text="The asset token (0x... or a Hedera id 0.0.N).")
    payout_contract_address = forms.CharField(
        max_length=80,
        required=False,
        help_text="Attach an existing payout contract, 0x... or 0.0.N (else one is deployed).",
    )
    payment_token_address = forms.CharField(
        max_length=80,
        required=False,
        help_text="Payment token, 0x... or 0.0.N; needed when no payout contract is given.",
    )
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the token's name.")


@admin.register(Asset)
class AssetAdmin(OperatorModelAdmin):
    list_display = (
        "name",
        "symbol",
        "asset_type",
        "sync_status",
        "pause_state",
        "sync_enabled",
        "holders_count",
        "last_synced_at",
    )
    list_filter = ("sync_status", "pause_state", "sync_enabled", "asset_type")
    search_fields = ("name", "=symbol", "=token_address", "=hedera_token_id")
    ordering = ("-created_at",)
    show_full_result_count = False
    readonly_fields = tuple(f.name for f in Asset._meta.fields)
    fieldsets = (
        (None, {"fields": ("name", "symbol", "asset_type", "decimals", "maturity_date")}),
        (
            "Contracts",
            {"fields": ("token_address", "hedera_token_id", "payout_contract_address", "hedera_payout_contract_id")},
        ),
        (
            "Payment token",
            {
                "fields": (
                    "payment_token_symbol",
                    "payment_token_decimals",
                    "payment_token_address",
                    "hedera_payment_token_id",
                )
            },
        ),
        (
            "Sync",
            {
                "fields": (
                    "sync_enabled",
                    "sync_status",
                    "sync_error",
                    "sync_started_at",
                    "last_synced_at",
                    "holders_count",
                )
            },
        ),
        ("Pause", {"fields": ("pause_state", "pause_error")}),
        (
            _INTERNAL,
            {
                "classes": ("collapse",),
                "fields": (
                    "id",
                    "is_paused",
                    "pause_generation",
                    "sync_block",
                    "sync_cursor",
                    "sync_sweeps",
                    "created_at",
                    "updated_at",
                ),
            },
        ),
    )
    actions = ("pause_assets", "unpause_assets", "sync_now", "enable_sync", "disable_sync")

    def has_delete_permission(self, request: HttpRequest, obj: Asset | None = None) -> bool:
        return False

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """ "Add asset" imports it from the chain."""

        def act(data: dict[str, Any]) -> str:
            asset = services.asset_import(**{k: v for k, v in data.items() if v})
            messages.success(request, f"Imported {asset}; holders are syncing.")
            return reverse("admin:payouts_asset_change", args=[asset.pk])

        form = AssetImportForm(request.POST or None)
        return _service_form(request, self, form, title="Import an asset from the chain", act=act)

    @admin.action(description="Pause (also on chain)")
    def pause_assets(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        _run_each(
            request,
            queryset,
            lambda a: services.asset_set_paused(asset_id=a.pk, paused=True),
            "Pausing (no batch is sent from now; PAUSED once the chain confirms)",
        )

    @admin.action(description="Unpause (also on chain)")
    def unpause_assets(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        _run_each(
            request,
            queryset,
            lambda a: services.asset_set_paused(asset_id=a.pk, paused=False),
            "Unpausing (batches resume once the chain confirms the unpause)",
        )

    @admin.action(description="Sync holders now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        _run_each(request, queryset, lambda a: services.asset_request_sync(asset_id=a.pk), "Sync requested")

    @admin.action(description="Enable periodic sync")
    def enable_sync(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        _run_each(request, queryset, lambda a: services.asset_set_sync_enabled(asset_id=a.pk, enabled=True), "Enabled")

    @admin.action(description="Disable periodic sync")
    def disable_sync(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        _run_each(
            request, queryset, lambda a: services.asset_set_sync_enabled(asset_id=a.pk, enabled=False), "Disabled"
        )


def _service_form(
    request: HttpRequest,
    model_admin: admin.ModelAdmin[Any],
    form: forms.Form,
    *,
    title: str,
    act: Callable[[dict[str, Any]], str],
) -> HttpResponse:
    """A form page whose valid POST calls one service: `act(cleaned_data)` says what it did (a message)
    and returns where to go next; a refusal (`DomainError`) is shown on the form, by its field if it names one."""
    if not model_admin.has_add_permission(request):
        return HttpResponse(status=403)
    if request.method == "POST" and form.is_valid():
        try:
            next_url = act(form.cleaned_data)
        except DomainError as exc:
            field = exc.field if isinstance(exc, InvalidInput) and exc.field in form.fields else None
            form.add_error(field, str(exc))
        else:
            return HttpResponseRedirect(next_url)
    return _form_page(request, model_admin, form, title=title)


def _form_page(
    request: HttpRequest, model_admin: admin.ModelAdmin[Any], form: forms.Form, *, title: str
) -> HttpResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/payouts/service_form.html", context)


def _time_zone_choices() -> list[tuple[str, str]]:
    return [("", "- (UTC)"), *((name, name) for name in time_zone_names())]


class DistributionCreateForm(forms.Form):
    asset = forms.ModelChoiceField(queryset=Asset.objects.order_by("name"))
    subtype = forms.ChoiceField(choices=Distribution.Subtype.choices, initial=Distribution.Subtype.IMMEDIATE)
    amount_type = forms.ChoiceField(choices=Distribution.AmountType.choices[:2])
    amount = forms.CharField(
        required=False,
        help_text="FIXED: total in payment-token units (not base units), e.g. 1,000.50 or 1000.50; "
        "at most as many decimals as the token has",
    )
    percentage = forms.DecimalField(required=False, decimal_places=2, help_text="PERCENTAGE: 0.01 to 100")
    scheduled_at = forms.DateTimeField(
        required=False,
        help_text="ONE_OFF / RECURRING: a future time, on the clock of the time zone below (UTC when empty)",
    )
    recurrence = forms.ChoiceField(choices=[("", "-"), *Distribution.Recurrence.choices], required=False)
    catch_up = forms.ChoiceField(
        choices=[("", "-"), *Distribution.CatchUp.choices],
        required=False,
        label="Catch-up policy",
        help_text="RECURRING: occurrences missed while the system was down or the asset paused (default latest)",
    )
    time_zone = forms.ChoiceField(
        choices=_time_zone_choices,
        required=False,
        help_text="RECURRING: the IANA zone whose wall clock the series keeps (09:00 stays 09:00 across "
        "daylight-saving changes). A time the clocks jump over runs when they jump; one they repeat runs at "
        "the earlier of the two.",
    )
    concept = forms.CharField(required=False, max_length=500)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scheduled_at") and data.get("time_zone"):
            # the form read the digits as UTC (the site's zone): read the same digits on the series' clock
            wall = timezone.make_naive(data["scheduled_at"])
            data["scheduled_at"] = local_instant(wall, zone(data["time_zone"]))
        clean_payment_amount(self, data)
        percentage = data.get("percentage")
        data["percentage_bps"] = int(percentage * 100) if percentage is not None else None
        return data


@admin.register(Distribution)
class DistributionAdmin(OperatorModelAdmin):
    list_display = (
        "short_id",
        "asset",
        "distribution_type",
        "subtype",
        "amount_display",
        "status",
        "scheduled_display",
        "progress_bar",
        "paid_count",
        "failed_count",
        "pending",
    )
    list_filter = ("status", "distribution_type", "subtype")
    list_select_related = ("asset",)
    raw_id_fields = ("asset",)
    ordering = ("-created_at",)
    show_full_result_count = False
    search_fields = ("=id", "=chain_distribution_id")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "asset",
                    "distribution_type",
                    "subtype",
                    "corporate_action",
                    "concept",
                    "status",
                    "status_reason",
                    "cancel_scope",
                    "error",
                )
            },
        ),
        (
            "Amounts (payment-token units)",
            {
                "fields": (
                    "amount_type",
                    "total_display",
                    "percentage_display",
                    "per_token_display",
                    "computed_total_display",
                    "paid_amount_display",
                )
            },
        ),
        (
            "Progress",
            {
                "fields": (
                    "progress_bar",
                    "holders_count",
                    "paid_count",
                    "failed_count",
                    "batches_count",
                    "batch_size",
                    "links",
                )
            },
        ),
        (
            "Schedule",
            {
                "fields": (
                    "scheduled_at",
                    "recurrence",
                    "catch_up",
                    "time_zone",
                    "series_id",
                    "occurrence",
                    "recurrence_anchor",
                )
            },
        ),
        ("Times", {"fields": ("created_at", "started_at", "planned_at", "finished_at", "execution_duration")}),
        (
            _INTERNAL,
            {
                "classes": ("collapse",),
                "fields": (
                    "onchain_id",
                    "corporate_action_id",
                    "snapshot_id",
                    "snapshot_block",
                    "plan_cursor",
                    "plan_read_done",
                    "plan_sweeps",
                    "updated_at",
                ),
            },
        ),
    )
    readonly_fields = tuple(flatten_fieldsets(fieldsets))
    actions = ("execute_now", "cancel", "cancel_series", "retry", "reconcile", "export_payments_csv")

    def has_delete_permission(self, request: HttpRequest, obj: Distribution | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Distribution | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """ "Add distribution" creates one through the service (IMMEDIATE ones start at once)."""

        def act(data: dict[str, Any]) -> str:
            distribution = services.distribution_create(
                asset_id=data["asset"].pk,
                subtype=data["subtype"],
                amount_type=data["amount_type"],
                amount=data["amount"],
                percentage_bps=data["percentage_bps"],
                scheduled_at=data["scheduled_at"],
                recurrence=data["recurrence"] or "",
                catch_up=data["catch_up"] or None,
                time_zone=data["time_zone"] or None,
                concept=data["concept"] or "",
            )
            messages.success(request, f"Created {distribution.id} ({distribution.status}).")
            return reverse("admin:payouts_distribution_change", args=[distribution.pk])

        form = DistributionCreateForm(request.POST or None)
        return _service_form(request, self, form, title="Create a distribution", act=act)

    @admin.display(description="id")
    def short_id(self, obj: Distribution) -> str:
        return str(obj.id)[:8]

    @admin.display(description="scheduled at", ordering="scheduled_at")
    def scheduled_display(self, obj: Distribution) -> str:
        if obj.scheduled_at is None:
            return "-"
        if obj.subtype != Distribution.Subtype.RECURRING:
            return wall_clock_text(obj.scheduled_at)
        return wall_clock_text(obj.scheduled_at, obj.time_zone)

    @admin.display(description="amount")
    def amount_display(self, obj: Distribution) -> str:
        if obj.percentage_bps is not None:
            return display_percent(obj.percentage_bps)
        if obj.amount_per_token is not None:
            return self.per_token_display(obj)
        return payment_units(obj.amount, obj.asset)

    @admin.display(description="total requested (FIXED)")
    def total_display(self, obj: Distribution) -> str:
        return payment_units(obj.amount, obj.asset)

    @admin.display(description="percentage of the contract's balance (PERCENTAGE)")
    def percentage_display(self, obj: Distribution) -> str:
        return display_percent(obj.percentage_bps)

    @admin.display(description="amount per asset token (PER_TOKEN)")
    def per_token_display(self, obj: Distribution) -> str:
        if obj.amount_per_token is None:
            return "-"
        return f"{payment_units(obj.amount_per_token, obj.asset)} per {obj.asset.symbol}"

    @admin.display(description="total split")
    def computed_total_display(self, obj: Distribution) -> str:
        return payment_units(obj.computed_total, obj.asset)

    @admin.display(description="paid so far")
    def paid_amount_display(self, obj: Distribution) -> str:
        return payment_units(obj.paid_amount, obj.asset)

    @admin.display(description="on-chain distribution id (bytes32)")
    def onchain_id(self, obj: Distribution) -> str:
        return obj.chain_distribution_id

    @admin.display(description="pending")
    def pending(self, obj: Distribution) -> int:
        return obj.pending_count

    @admin.display(description="progress")
    def progress_bar(self, obj: Distribution) -> str:
        total = obj.holders_count or 0
        paid = obj.paid_count * 100 // total if total else (100 if obj.status == Distribution.Status.COMPLETED else 0)
        failed = obj.failed_count * 100 // total if total else 0
        return format_html(
            '<div title="{} paid, {} failed, {} pending" style="width:140px;height:12px;background:#ddd;display:flex">'
            '<div style="width:{}%;background:#2e7d32"></div><div style="width:{}%;background:#c62828"></div></div>'
            "<small>{}%</small>",
            obj.paid_count,
            obj.failed_count,
            obj.pending_count,
            paid,
            failed,
            paid,
        )

    @admin.display(description="batches and payments")
    def links(self, obj: Distribution) -> str:
        batches = reverse("admin:payouts_batchpayout_changelist") + f"?distribution__id__exact={obj.pk}"
        payments = reverse("admin:payouts_holderpayment_changelist") + f"?distribution__id__exact={obj.pk}"
        csv = reverse("admin:payouts_distribution_payments_csv", args=[obj.pk])
        return format_html(
            '<a href="{}">batches</a> · <a href="{}">holder payments</a> · <a href="{}">payments CSV</a>',
            batches,
            payments,
            csv,
        )

    def get_urls(self) -> list[URLPattern]:
        csv = path(
            "<path:object_id>/payments.csv",
            self.admin_site.admin_view(self.payments_csv_view),
            name="payouts_distribution_payments_csv",
        )
        return [csv, *super().get_urls()]

    def payments_csv_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """Every payment of the distribution as CSV (`payouts.exports`), streamed."""
        distribution = self.get_object(request, object_id)
        if distribution is None:
            raise Http404("distribution not found")
        if not self.has_view_permission(request, distribution):
            raise PermissionDenied
        return exports.payments_csv_response(distribution)

    @admin.action(description="Export payments as CSV (one distribution)")
    def export_payments_csv(self, request: HttpRequest, queryset: QuerySet[Distribution]) -> HttpResponseBase | None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            messages.warning(request, "Select exactly one distribution to export its payments.")
            return None
        return exports.payments_csv_response(chosen[0])

    @admin.action(description="Reconcile with the chain (report, holder by holder)")
    def reconcile(self, request: HttpRequest, queryset: QuerySet[Distribution]) -> TemplateResponse | None:
        chosen = list(queryset[: RECONCILE_AT_ONCE + 1])
        if len(chosen) > RECONCILE_AT_ONCE:
            messages.warning(request, f"Select at most {RECONCILE_AT_ONCE} distributions to reconcile at once.")
            return None
        reports = [services.distribution_reconcile(distribution_id=d.pk) for d in chosen]
        context = {
            **self.admin_site.each_context(request),
            "title": "Reconciliation with the chain",
            "opts": self.model._meta,
            "reports": [(r, r.counts(), r.differences[:RECONCILE_SHOWN]) for r in reports],
            "shown": RECONCILE_SHOWN,
        }
        return TemplateResponse(request, "admin/payouts/reconciliation.html", context)

    @admin.action(description="Execute now")
    def execute_now(self, request: HttpRequest, queryset: QuerySet[Distribution]) -> None:
        _run_each(request, queryset, lambda d: services.distribution_start(distribution_id=d.pk), "Started")

    @admin.action(description="Cancel this occurrence only (SCHEDULED only; a series goes on)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Distribution]) -> None:
        _run_each(request, queryset, lambda d: services.distribution_cancel(distribution_id=d.pk), "Cancelled")

    @admin.action(description="Cancel the whole series (every SCHEDULED occurrence, for good)")
    def cancel_series(self, request: HttpRequest, queryset: QuerySet[Distribution]) -> None:
        one_per_series: dict[object, Distribution] = {}
        for distribution in queryset:  # two occurrences of one series selected: one cancel
            one_per_series.setdefault(distribution.series_id or distribution.pk, distribution)
        _run_each(
            request,
            one_per_series.values(),
            lambda d: services.distribution_cancel(distribution_id=d.pk, scope=Distribution.CancelScope.SERIES),
            "Series cancelled",
        )

    @admin.action(description="Retry failed holders (FAILED only)")
    def retry(self, request: HttpRequest, queryset: QuerySet[Distribution]) -> None:
        _run_each(request, queryset, lambda d: services.distribution_retry(distribution_id=d.pk), "Retrying")


class _ReadOnly(OperatorModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BatchPayout)
class BatchPayoutAdmin(_ReadOnly):
    list_display = (
        "__str__",
        "distribution",
        "holders_count",
        "status",
        "attempts",
        "paid_count",
        "failed_count",
        "tx_link",
        "submitted_at",
        "confirmed_at",
    )
    list_filter = ("status",)
    raw_id_fields = ("distribution",)
    ordering = ("-id",)
    search_fields = ("=tx_hash", "=chain_batch_id")

    @admin.display(description="transaction")
    def tx_link(self, obj: BatchPayout) -> str:
        if obj.chain_transaction_id is None:
            return "-"
        try:
            url = reverse("admin:chain_chaintransaction_change", args=[obj.chain_transaction_id])
        except Exception:
            return obj.tx_hash or str(obj.chain_transaction_id)
        return format_html('<a href="{}">{}</a>', url, (obj.tx_hash or str(obj.chain_transaction_id))[:18])


@admin.register(HolderPayment)
class HolderPaymentAdmin(_ReadOnly):
    list_display = (
        "holder_address",
        "distribution",
        "batch_number",
        "amount_display",
        "status",
        "retry_count",
        "last_error",
        "updated_at",
    )
    list_filter = ("status",)
    list_select_related = ("distribution__asset",)
    raw_id_fields = ("distribution",)
    ordering = ("-id",)
    search_fields = ("=holder_address", "=tx_hash")
    fields = (
        "holder_address",
        "distribution",
        "batch_number",
        "balance_display",
        "amount_display",
        "status",
        "retry_count",
        "last_error",
        "next_retry_at",
        "tx_hash",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="amount")
    def amount_display(self, obj: HolderPayment) -> str:
        return payment_units(obj.amount, obj.distribution.asset)

    @admin.display(description="balance at the snapshot")
    def balance_display(self, obj: HolderPayment) -> str:
        return asset_units(obj.balance, obj.distribution.asset)


@admin.register(AssetHolder)
class AssetHolderAdmin(_ReadOnly):
    list_display = ("address", "asset", "balance_display", "balance_block", "updated_at")
    list_select_related = ("asset",)
    raw_id_fields = ("asset",)
    ordering = ("-id",)
    search_fields = ("=address",)
    fields = ("address", "asset", "balance_display", "balance_block", "last_seen_sync_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="balance")
    def balance_display(self, obj: AssetHolder) -> str:
        return asset_units(obj.balance, obj.asset)


class WithdrawalForm(forms.Form):
    asset = forms.ModelChoiceField(queryset=Asset.objects.exclude(payout_contract_address="").order_by("name"))
    to_address = forms.CharField(max_length=42, help_text="Where the payment tokens go (0x...).")
    amount = forms.CharField(
        help_text="Payment-token units (not base units), e.g. 250.5; at most what no running distribution reserved."
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        clean_payment_amount(self, data)
        return data


@admin.register(FundsWithdrawal)
class FundsWithdrawalAdmin(_ReadOnly):
    """Leftover funds taken back from payout contracts; "Add" sends a new withdrawal."""

    list_display = ("created_at", "asset", "to_address", "amount_display", "status", "tx_hash", "requested_by")
    list_filter = ("status",)
    list_select_related = ("asset", "requested_by")
    raw_id_fields = ("asset",)
    ordering = ("-created_at",)
    fields = (
        "asset",
        "to_address",
        "amount_display",
        "status",
        "tx_hash",
        "error",
        "requested_by",
        "created_at",
        "finished_at",
        "id",
        "chain_transaction_id",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_approver(request.user)

    @admin.display(description="amount")
    def amount_display(self, obj: FundsWithdrawal) -> str:
        return payment_units(obj.amount, obj.asset)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """ "Add funds withdrawal" sends one through the service (unreserved funds only)."""

        def act(data: dict[str, Any]) -> str:
            withdrawal = services.funds_withdraw(
                asset_id=data["asset"].pk,
                to_address=data["to_address"],
                amount=data["amount"],
                requested_by_id=request.user.pk,
            )
            messages.success(request, f"Withdrawal {withdrawal.pk} sent to the chain lane.")
            return reverse("admin:payouts_fundswithdrawal_changelist")

        form = WithdrawalForm(request.POST or None)
        return _service_form(request, self, form, title="Withdraw leftover funds from a payout contract", act=act)
