"""Admin pages for event listeners (enable/disable, reset cursor, poll now, sync lag) and stored events."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from chain.hedera import address_resolve
from chain.listener.models import ChainEvent, EventListener
from chain.listener.services import event_reprocess, listener_reset_cursor, listener_set_enabled
from chain.listener.tasks import poll_listener_task
from config.enqueue import publish
from config.errors import DomainError
from config.roles import OperatorModelAdmin


class EventListenerForm(forms.ModelForm):  # type: ignore[type-arg]
    """The contract may be given as a 0x address or a Hedera id (`0.0.4431`, optionally with its
    checksum), resolved through the Mirror Node; the listener keeps the EVM address and the id."""

    contract_address = forms.CharField(
        max_length=80, help_text="The contract: a 0x address or a Hedera id (0.0.N, optionally with its checksum)."
    )

    class Meta:
        model = EventListener
        fields = (
            "name", "contract_address", "abi_name", "source", "enabled", "confirmations", "max_block_range",
            "start_block", "start_timestamp",
        )  # fmt: skip

    def clean_contract_address(self) -> str:
        value = self.cleaned_data["contract_address"].strip()
        if self.instance.pk and value in (self.instance.contract_address, self.instance.hedera_id):
            return str(self.instance.contract_address)  # unchanged: no lookup
        try:
            resolved = address_resolve(field="contract_address", value=value)
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from None
        self.instance.hedera_id = resolved.hedera_id
        return resolved.address


@admin.register(EventListener)
class EventListenerAdmin(OperatorModelAdmin):
    form = EventListenerForm
    list_display = (
        "name", "source", "contract_address", "hedera_id", "abi_name", "enabled", "cursor", "lag",
        "last_success_at", "short_error", "failed_events",
    )  # fmt: skip
    list_filter = ("source", "enabled")
    search_fields = ("name", "contract_address", "=hedera_id")
    readonly_fields = (
        "hedera_id", "last_processed_block", "last_processed_timestamp", "last_processed_log_index", "head_block",
        "last_polled_at", "last_success_at", "last_error", "events_stored", "created_at", "updated_at", "lag",
    )  # fmt: skip
    actions = ("enable", "disable", "reset_cursor", "poll_now")

    @admin.display(description="cursor")
    def cursor(self, obj: EventListener) -> str:
        return obj.cursor_display()

    @admin.display(description="sync lag")
    def lag(self, obj: EventListener) -> str:
        return obj.sync_lag()

    @admin.display(description="last error")
    def short_error(self, obj: EventListener) -> str:
        return obj.last_error[:80]

    @admin.display(description="failed events")
    def failed_events(self, obj: EventListener) -> int:
        return obj.events.filter(status=ChainEvent.Status.FAILED).count()

    @admin.action(description="Enable selected listeners")
    def enable(self, request: HttpRequest, queryset: QuerySet[EventListener]) -> None:
        for listener in queryset:
            listener_set_enabled(listener_id=listener.pk, enabled=True)
        self.message_user(request, f"{queryset.count()} listener(s) enabled.")

    @admin.action(description="Disable selected listeners")
    def disable(self, request: HttpRequest, queryset: QuerySet[EventListener]) -> None:
        for listener in queryset:
            listener_set_enabled(listener_id=listener.pk, enabled=False)
        self.message_user(request, f"{queryset.count()} listener(s) disabled.")

    @admin.action(description="Reset cursor to the start (re-read; stored events are not processed twice)")
    def reset_cursor(self, request: HttpRequest, queryset: QuerySet[EventListener]) -> None:
        for listener in queryset:
            listener_reset_cursor(listener_id=listener.pk)
        self.message_user(request, f"{queryset.count()} cursor(s) reset.", messages.WARNING)

    @admin.action(description="Poll now")
    def poll_now(self, request: HttpRequest, queryset: QuerySet[EventListener]) -> None:
        sent = sum(publish(poll_listener_task, listener.pk) for listener in queryset)
        if sent < queryset.count():
            self.message_user(request, "The broker is unreachable: the periodic poll will run.", messages.WARNING)
        self.message_user(request, f"{sent} poll(s) enqueued.")


@admin.register(ChainEvent)
class ChainEventAdmin(OperatorModelAdmin):
    list_display = ("id", "event_name", "status", "listener", "block_number", "tx_hash", "log_index", "created_at")
    list_filter = ("status", "event_name", "listener")
    search_fields = ("tx_hash", "contract_address")
    list_select_related = ("listener",)
    actions = ("reprocess",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Reprocess selected events (failed, no processor, undecodable)")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[ChainEvent]) -> None:
        outcome: dict[str, int] = {}
        for event_id in queryset.exclude(status=ChainEvent.Status.PROCESSED).values_list("pk", flat=True):
            status = event_reprocess(event_id=event_id).status
            outcome[status] = outcome.get(status, 0) + 1
        summary = ", ".join(f"{count} {status}" for status, count in sorted(outcome.items())) or "nothing to do"
        self.message_user(request, f"Reprocessed: {summary}.")
