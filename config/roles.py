"""Operator roles, the same in the API and the admin: staff read everything, approvers change things.

- **Read-only staff** (`is_staff`): every GET of the API, every page of our apps' admin, read-only.
- **Approvers** (members of the `approvers` group, created by a data migration) and superusers: also
  every change: create, execute, retry or cancel distributions, import assets, withdraw funds, and
  every other POST / PATCH / DELETE of the API and add / change / delete / action of the admin.

Roles, not Django's per-model permissions, decide our admin pages (`OperatorModelAdmin`,
`OperatorInline`), so the two faces can never disagree. Django's own pages (users, groups, periodic
tasks) keep model permissions: superusers manage them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

APPROVERS_GROUP = "approvers"

APPROVER_REQUIRED = (
    "Your account can read but not change anything: creating, executing, retrying or cancelling "
    "distributions, importing assets, withdrawals and every other change need an approver. Ask an "
    f"administrator to add you to the '{APPROVERS_GROUP}' group (manage.py create_operator NAME --approver)."
)

User = AbstractBaseUser | AnonymousUser | None


def is_staff(user: User) -> bool:
    """An active staff user: may read everything."""
    return bool(user is not None and user.is_active and getattr(user, "is_staff", False))


def is_approver(user: User) -> bool:
    """An active staff superuser, or active staff in the approvers group: may change things."""
    if not is_staff(user):
        return False
    if getattr(user, "is_superuser", False):
        return True
    groups = getattr(user, "groups", None)
    return bool(groups is not None and groups.filter(name=APPROVERS_GROUP).exists())


class ApproverForChanges(BasePermission):
    """API: reads pass (staff is checked by `IsAdminUser` before this); changes need an approver."""

    message = APPROVER_REQUIRED
    code = "approver_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or is_approver(request.user)


class OperatorModelAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Base of our admin pages: staff see them; only approvers add, change, delete or run actions.

    A page's own narrower rule (`return False`, "only while DRAFT") still applies on top.
    """

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_staff(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_approver(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_approver(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_approver(request.user)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # No action bar for read-only staff; an action posted anyway is not among these, so Django runs nothing.
        return super().get_actions(request) if is_approver(request.user) else {}


class OperatorInline(admin.TabularInline):  # type: ignore[type-arg]
    """Base of our inlines: shown to every staff user (all of ours are read-only)."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request.user)
