"""The payouts API without the chain: validation, 404s, conflicts, pagination and shapes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from payouts.models import Asset, Distribution
from tests.payouts.factories import make_asset, make_distribution, make_holder

pytestmark = pytest.mark.django_db


def _future(hours: int = 2) -> str:
    return (timezone.now() + timedelta(hours=hours)).isoformat()


def _one_off(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"subtype": "ONE_OFF", "amount_type": "FIXED", "amount": "1250.5", "scheduled_at": _future()}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_a_one_off_payout_is_created_with_amounts_as_decimal_strings(api_client: APIClient) -> None:
    # given
    asset = make_asset()
    # when
    response = api_client.post(f"/api/v1/assets/{asset.pk}/distributions", _one_off(concept="Q3"), format="json")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["amount"], body["amount_type"], body["concept"]) == (
        "SCHEDULED",
        "1250.5",
        "FIXED",
        "Q3",
    )
    assert Distribution.objects.get().amount == 1_250_500_000


def test_a_percentage_is_stored_in_basis_points(api_client: APIClient) -> None:
    asset = make_asset()
    response = api_client.post(
        f"/api/v1/assets/{asset.pk}/distributions",
        _one_off(amount=None, amount_type="PERCENTAGE", percentage="12.34"),
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["percentage"] == "12.34"
    assert Distribution.objects.get().percentage_bps == 1234


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "0.0"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"amount": 100}, "amount"),
        ({"amount": "1.0000001"}, "amount"),  # payment token has 6 decimals
        ({"amount": None}, "amount"),
        ({"amount": None, "amount_type": "PERCENTAGE", "percentage": "100.01"}, "percentage"),
        ({"amount": None, "amount_type": "PERCENTAGE", "percentage": "0"}, "percentage"),
        ({"amount": None, "amount_type": "PERCENTAGE", "percentage": "0.001"}, "percentage"),
        ({"amount": None, "amount_type": "PERCENTAGE", "percentage": "-1"}, "percentage"),
        ({"amount": None, "amount_type": "PERCENTAGE", "percentage": "lots"}, "percentage"),
        # more significant digits than Decimal's default context keeps: must not round to 50 %
        ({"amount": None, "amount_type": "PERCENTAGE", "percentage": "50.0000000000000000000000000001"}, "percentage"),
        ({"amount": None, "amount_type": "PERCENTAGE", "percentage": "9" * 5000}, "percentage"),
        ({"amount_type": "PERCENTAGE"}, "percentage"),
        ({"scheduled_at": "2001-01-01T00:00:00Z"}, "scheduled_at"),
        ({"scheduled_at": "tomorrow"}, "scheduled_at"),
        ({"scheduled_at": None}, "scheduled_at"),
        ({"subtype": "SOMETIMES"}, "subtype"),
        ({"amount_type": "ALL"}, "amount_type"),
        ({"subtype": "RECURRING", "recurrence": "YEARLY"}, "recurrence"),
        ({"subtype": "RECURRING"}, "recurrence"),
        ({"recurrence": "DAILY"}, "recurrence"),
        ({"subtype": "IMMEDIATE"}, "scheduled_at"),
        ({"distribution_type": "CORPORATE_ACTION"}, "distribution_type"),
        ({"pay_to": "0x0000000000000000000000000000000000000001"}, "pay_to"),
        ({"status": "COMPLETED"}, "status"),
        ({"catch_up": "all"}, "catch_up"),
        ({"subtype": "IMMEDIATE", "scheduled_at": None, "catch_up": "none"}, "catch_up"),
        ({"subtype": "RECURRING", "recurrence": "DAILY", "catch_up": "sometimes"}, "catch_up"),
        ({"subtype": "RECURRING", "recurrence": "DAILY", "catch_up": "LATEST"}, "catch_up"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(
    api_client: APIClient, overrides: dict[str, Any], field: str
) -> None:
    # given
    asset = make_asset()
    body = _one_off(**{k: v for k, v in overrides.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        body.pop(key, None)
    # when
    response = api_client.post(f"/api/v1/assets/{asset.pk}/distributions", body, format="json")
    # then
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"], response.json()
    assert Distribution.objects.count() == 0


def test_a_recurring_series_takes_a_catch_up_policy_and_shows_it(api_client: APIClient) -> None:
    # given
    asset = make_asset()
    url = f"/api/v1/assets/{asset.pk}/distributions"
    # when a series is created with a policy, one without, and a one-off
    explicit = api_client.post(url, _one_off(subtype="RECURRING", recurrence="DAILY", catch_up="none"), format="json")
    default = api_client.post(url, _one_off(subtype="RECURRING", recurrence="WEEKLY"), format="json")
    one_off = api_client.post(url, _one_off(), format="json")
    # then the series carry their policy (default latest); a one-off has none; no reason yet
    assert explicit.status_code == default.status_code == one_off.status_code == 201, explicit.json()
    assert (explicit.json()["catch_up"], default.json()["catch_up"], one_off.json()["catch_up"]) == (
        "none",
        "latest",
        None,
    )
    assert explicit.json()["status_reason"] == ""
    assert Distribution.objects.get(pk=explicit.json()["id"]).catch_up == Distribution.CatchUp.NONE


def test_skipped_occurrences_are_listed_with_their_reason(api_client: APIClient) -> None:
    # given one skipped occurrence and others
    asset = make_asset()
    skipped = make_distribution(
        asset=asset,
        subtype=Distribution.Subtype.RECURRING,
        recurrence=Distribution.Recurrence.DAILY,
        series_id=uuid.uuid4(),
        status=Distribution.Status.SKIPPED,
        status_reason="missed while the system was down or the asset was paused; occurrence 3 ran instead",
    )
    make_distribution(asset=asset)
    # when
    listed = api_client.get("/api/v1/distributions", {"status": "SKIPPED"})
    of_asset = api_client.get(f"/api/v1/assets/{asset.pk}/distributions", {"status": "SKIPPED"})
    # then
    assert listed.status_code == of_asset.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [str(skipped.pk)]
    assert of_asset.json()["total"] == 1
    [item] = listed.json()["items"]
    assert (item["status"], item["catch_up"]) == ("SKIPPED", "latest")
    assert item["status_reason"].endswith("occurrence 3 ran instead")


def test_a_body_that_is_not_an_object_is_a_400(api_client: APIClient) -> None:
    asset = make_asset()
    response = api_client.post(f"/api/v1/assets/{asset.pk}/distributions", [1, 2], format="json")
    assert response.status_code == 400
    assert Distribution.objects.count() == 0


def test_a_paused_asset_refuses_new_distributions_with_409(api_client: APIClient) -> None:
    asset = make_asset(is_paused=True)
    response = api_client.post(f"/api/v1/assets/{asset.pk}/distributions", _one_off(), format="json")
    assert response.status_code == 409
    assert Distribution.objects.count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/assets/{bad}",
        "/api/v1/assets/{bad}/holders",
        "/api/v1/assets/{bad}/distributions",
        "/api/v1/distributions/{bad}",
        "/api/v1/distributions/{bad}/batches",
        "/api/v1/distributions/{bad}/payments",
    ],
)
@pytest.mark.parametrize("bad", ["not-a-uuid", "1", str(uuid.uuid4()), "%20"])
def test_malformed_or_unknown_ids_are_404(api_client: APIClient, path: str, bad: str) -> None:
    response = api_client.get(path.format(bad=bad))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("action", ["execute", "cancel", "retry"])
def test_actions_on_malformed_ids_are_404(api_client: APIClient, action: str) -> None:
    assert api_client.post(f"/api/v1/distributions/xyz/{action}").status_code == 404


def test_cancel_only_a_scheduled_distribution(api_client: APIClient) -> None:
    # given
    scheduled = make_distribution()
    completed = make_distribution(status=Distribution.Status.COMPLETED)
    # when
    ok = api_client.post(f"/api/v1/distributions/{scheduled.pk}/cancel")
    refused = api_client.post(f"/api/v1/distributions/{completed.pk}/cancel")
    again = api_client.post(f"/api/v1/distributions/{scheduled.pk}/cancel")
    # then
    assert ok.status_code == 200
    assert ok.json()["status"] == "CANCELLED"
    assert refused.status_code == 409
    assert again.status_code == 409


@pytest.mark.parametrize("status", ["SCHEDULED", "IN_PROGRESS", "COMPLETED", "CANCELLED"])
def test_retry_only_a_failed_distribution(api_client: APIClient, status: str) -> None:
    distribution = make_distribution(status=status)
    response = api_client.post(f"/api/v1/distributions/{distribution.pk}/retry")
    assert response.status_code == 409
    distribution.refresh_from_db()
    assert distribution.status == status


def test_execute_twice_is_one_execution_then_409(api_client: APIClient, funded_asset: Asset) -> None:
    # given a scheduled distribution of a funded asset
    distribution = make_distribution(asset=funded_asset)
    # when executed twice
    first = api_client.post(f"/api/v1/distributions/{distribution.pk}/execute")
    second = api_client.post(f"/api/v1/distributions/{distribution.pk}/execute")
    # then
    assert first.status_code == 202
    assert first.json()["status"] == "IN_PROGRESS"
    assert second.status_code == 409


def test_execute_answers_503_when_the_chain_cannot_be_read(api_client: APIClient, settings: Settings) -> None:
    # given no reachable chain
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"
    distribution = make_distribution()
    # when
    response = api_client.post(f"/api/v1/distributions/{distribution.pk}/execute")
    # then it is a 503 that changed nothing, and says nothing of the RPC URL
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert "127.0.0.1" not in response.json()["detail"]
    distribution.refresh_from_db()
    assert distribution.status == Distribution.Status.SCHEDULED


def test_lists_are_paginated_and_filtered(api_client: APIClient) -> None:
    # given
    asset = make_asset()
    for _ in range(3):
        make_distribution(asset=asset)
    make_distribution(asset=asset, status=Distribution.Status.FAILED)
    make_distribution()
    # when
    page = api_client.get("/api/v1/distributions", {"limit": 2, "page": 2})
    failed = api_client.get("/api/v1/distributions", {"status": "FAILED"})
    of_asset = api_client.get(f"/api/v1/assets/{asset.pk}/distributions")
    bad = api_client.get("/api/v1/distributions", {"status": "WHATEVER"})
    # then
    assert page.status_code == 200
    assert {k: page.json()[k] for k in ("total", "page", "limit", "total_pages")} == {
        "total": 5,
        "page": 2,
        "limit": 2,
        "total_pages": 3,
    }
    assert len(page.json()["items"]) == 2
    assert failed.json()["total"] == 1
    assert of_asset.json()["total"] == 4
    assert bad.status_code == 400


def test_holders_list_shows_balances_in_token_units(api_client: APIClient) -> None:
    asset = make_asset(decimals=2)
    make_holder(asset=asset, balance=12345)
    make_holder(asset=asset, balance=0)
    response = api_client.get(f"/api/v1/assets/{asset.pk}/holders")
    assert response.status_code == 200
    assert [h["balance"] for h in response.json()["items"]] == ["123.45"]


def test_the_api_needs_authentication(anonymous_client: APIClient) -> None:
    assert anonymous_client.get("/api/v1/distributions").status_code == 401
    assert anonymous_client.get("/api/v1/assets").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token_address": "nope"},
        {"token_address": "0x0000000000000000000000000000000000000001", "extra": 1},
    ],
)
def test_import_validates_before_touching_the_chain(api_client: APIClient, body: dict[str, Any]) -> None:
    response = api_client.post("/api/v1/assets/import", body, format="json")
    assert response.status_code == 400
