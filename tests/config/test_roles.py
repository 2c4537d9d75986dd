"""Operator roles: staff read everything; only approvers (or superusers) change anything, in the API and the admin."""

from __future__ import annotations

import importlib
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from agreements.models import Agreement
from config.roles import APPROVERS_GROUP
from payouts.models import Asset, Distribution
from tests.agreements.factories import AgreementFactory
from tests.fixtures.users import make_operator, token_client
from tests.payouts.factories import make_asset, make_distribution

pytestmark = pytest.mark.django_db

OUR_APPS = {"payouts", "agreements", "chain"}


@pytest.fixture
def viewer() -> User:
    return make_operator("viewer", approver=False)


@pytest.fixture
def viewer_client(viewer: User) -> APIClient:
    return token_client(viewer)


@pytest.fixture
def viewer_admin(viewer: User) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


# --- API ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/api/v1/", "/api/v1/assets", "/api/v1/distributions", "/api/v1/agreements/", "/api/v1/webhook-deliveries/"],
)
def test_read_only_staff_read_everything(viewer_client: APIClient, path: str) -> None:
    assert viewer_client.get(path).status_code == 200


def _writes() -> dict[str, tuple[str, Any]]:
    asset = make_asset()
    scheduled = make_distribution(asset=asset, status=Distribution.Status.SCHEDULED)
    failed = make_distribution(asset=asset, status=Distribution.Status.FAILED)
    return {
        "import an asset": ("/api/v1/assets/import", {"token_address": "0x" + "11" * 20}),
        "create a distribution": (
            f"/api/v1/assets/{asset.pk}/distributions",
            {"subtype": "IMMEDIATE", "amount_type": "FIXED", "amount": "10"},
        ),
        "execute": (f"/api/v1/distributions/{scheduled.pk}/execute", None),
        "retry": (f"/api/v1/distributions/{failed.pk}/retry", None),
        "cancel": (f"/api/v1/distributions/{scheduled.pk}/cancel", None),
        "withdraw": (f"/api/v1/assets/{asset.pk}/withdrawals", {"to_address": "0x" + "22" * 20, "amount": "1"}),
        "pause": (f"/api/v1/assets/{asset.pk}/pause", None),
        "create an agreement": ("/api/v1/agreements/", {}),
    }


def test_read_only_staff_are_refused_every_change_with_a_clear_403(viewer_client: APIClient) -> None:
    # given
    writes = _writes()
    before = (Asset.objects.count(), list(Distribution.objects.values_list("id", "status").order_by("id")))
    # when read-only staff try each change
    answers = {what: viewer_client.post(path, body, format="json") for what, (path, body) in writes.items()}
    # then each is a 403 naming the approvers group, and nothing changed
    assert {what: a.status_code for what, a in answers.items()} == dict.fromkeys(writes, 403)
    for answer in answers.values():
        assert answer.json()["code"] == "approver_required"
        assert "approvers" in answer.json()["detail"]
    assert (Asset.objects.count(), list(Distribution.objects.values_list("id", "status").order_by("id"))) == before
    assert not Agreement.objects.exists()


@pytest.mark.parametrize("who", ["approver", "superuser"])
def test_approvers_and_superusers_make_changes(who: str) -> None:
    # given
    if who == "approver":
        user = make_operator("boss", approver=True)
    else:
        user = User.objects.create_superuser("root", password="root-pass-123")
    asset = make_asset()
    scheduled = make_distribution(asset=asset, status=Distribution.Status.SCHEDULED)
    client = token_client(user)
    # when
    created = client.post(
        f"/api/v1/assets/{asset.pk}/distributions",
        {"subtype": "ONE_OFF", "amount_type": "FIXED", "amount": "10", "scheduled_at": "2099-01-01T00:00:00Z"},
        format="json",
    )
    cancelled = client.post(f"/api/v1/distributions/{scheduled.pk}/cancel")
    # then
    assert created.status_code == 201, created.json()
    assert cancelled.status_code == 200, cancelled.json()
    assert Distribution.objects.get(pk=scheduled.pk).status == Distribution.Status.CANCELLED


# --- Admin ----------------------------------------------------------------------------------------
def _our_model_admins() -> list[tuple[str, str]]:
    return sorted(
        (model._meta.app_label, model._meta.model_name or "")
        for model in admin.site._registry
        if model._meta.app_label in OUR_APPS
    )


def test_read_only_staff_see_every_page_of_our_apps_but_no_add_and_no_action(viewer_admin: Client) -> None:
    # given something on each of the main pages
    distribution = make_distribution(status=Distribution.Status.SCHEDULED)
    agreement = AgreementFactory.create()
    # when / then every changelist renders, without the action bar or an "add" link
    pages = _our_model_admins()
    assert len(pages) >= 10
    for app_label, model_name in pages:
        page = viewer_admin.get(f"/admin/{app_label}/{model_name}/")
        assert page.status_code == 200, (app_label, model_name, page.status_code)
        assert page.context["action_form"] is None, (app_label, model_name)
        assert not page.context["has_add_permission"], (app_label, model_name)
    # and the index lists them
    index = viewer_admin.get("/admin/").content.decode()
    assert "/admin/payouts/distribution/" in index
    assert "/admin/agreements/agreement/" in index
    # and detail pages are read-only
    change = viewer_admin.get(f"/admin/payouts/distribution/{distribution.pk}/change/")
    assert change.status_code == 200
    assert not change.context["has_change_permission"]
    detail = viewer_admin.get(f"/admin/agreements/agreement/{agreement.pk}/change/")
    assert detail.status_code == 200
    assert not detail.context["has_change_permission"]


@pytest.mark.parametrize(
    "path", ["/admin/payouts/asset/add/", "/admin/payouts/distribution/add/", "/admin/payouts/fundswithdrawal/add/"]
)
def test_read_only_staff_are_refused_the_import_create_and_withdraw_forms(viewer_admin: Client, path: str) -> None:
    assert viewer_admin.get(path).status_code == 403
    assert viewer_admin.post(path, {}).status_code == 403


def test_an_action_posted_by_read_only_staff_does_nothing(viewer_admin: Client) -> None:
    # given
    distribution = make_distribution(status=Distribution.Status.SCHEDULED)
    # when the "Cancel" action is posted anyway
    viewer_admin.post(
        "/admin/payouts/distribution/", {"action": "cancel", "_selected_action": [str(distribution.pk)]}, follow=True
    )
    # then it was not run
    assert Distribution.objects.get(pk=distribution.pk).status == Distribution.Status.SCHEDULED


def test_approvers_get_the_actions_and_forms_without_being_superusers() -> None:
    # given an approver who holds no model permission of its own
    client = Client()
    client.force_login(make_operator("approver", approver=True))
    distribution = make_distribution(status=Distribution.Status.SCHEDULED)
    # when
    changelist = client.get("/admin/payouts/distribution/")
    form = client.get("/admin/payouts/distribution/add/")
    client.post("/admin/payouts/distribution/", {"action": "cancel", "_selected_action": [str(distribution.pk)]})
    # then
    assert changelist.context["action_form"] is not None
    assert form.status_code == 200
    assert Distribution.objects.get(pk=distribution.pk).status == Distribution.Status.CANCELLED


# --- Setting people up ----------------------------------------------------------------------------
def test_create_operator_makes_read_only_staff_unless_told_approver() -> None:
    # when
    call_command("create_operator", "reader", "--password", "a-long-password-1", stdout=StringIO())
    out = StringIO()
    call_command("create_operator", "signer", "--approver", "--password", "a-long-password-2", stdout=out)
    # then
    assert not User.objects.get(username="reader").groups.filter(name=APPROVERS_GROUP).exists()
    assert User.objects.get(username="signer").groups.filter(name=APPROVERS_GROUP).exists()
    assert "role: approver" in out.getvalue()
    token = dict(line.split(": ", 1) for line in out.getvalue().splitlines())["api token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/v1/distributions/00000000-0000-0000-0000-000000000000/cancel").status_code == 404


def test_the_approvers_group_is_created_by_a_data_migration() -> None:
    # given no group (a flushed database)
    Group.objects.filter(name=APPROVERS_GROUP).delete()
    migration = importlib.import_module("config.migrations.0002_approvers_group")
    # when the migration's forward step runs
    migration.create_approvers_group(apps, None)
    # then
    assert Group.objects.filter(name=APPROVERS_GROUP).exists()
