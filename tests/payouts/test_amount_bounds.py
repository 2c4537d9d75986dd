"""Amounts are uint256 on chain: 2**256 base units or more is refused naming the field, never a 500.

The API and the service each refuse it (the admin form too: test_admin.py); the largest uint256 itself
is accepted. The payment token of the test assets has 6 decimals, so the boundary in token units has a
fraction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from config.errors import InvalidInput
from payouts import services
from payouts.models import Asset, Distribution
from payouts.units import format_units
from tests.payouts.factories import make_asset

pytestmark = pytest.mark.django_db

MAX_UINT256 = 2**256 - 1
DECIMALS = 6  # the factories' payment token

LARGEST = format_units(MAX_UINT256, DECIMALS)  # 115792...457.584007913129639935
ONE_BASE_UNIT_MORE = format_units(MAX_UINT256 + 1, DECIMALS)  # still fits numeric(78, 0)
REPORTED = str(2**256)  # 2**256 token units: 84 digits in base units, more than the column holds
HUGE = "9" * 5000  # longer than Python converts from str to int by default


def _future() -> str:
    return (timezone.now() + timedelta(hours=2)).isoformat()


def _body(field: str, value: str) -> dict[str, Any]:
    if field == "amount":
        return {"subtype": "ONE_OFF", "amount_type": "FIXED", "amount": value, "scheduled_at": _future()}
    return {
        "distribution_type": "BOND_CASH_OUT",
        "subtype": "ONE_OFF",
        "amount_type": "PER_TOKEN",
        "amount_per_token": value,
        "scheduled_at": _future(),
    }


@pytest.mark.parametrize("field", ["amount", "amount_per_token"])
@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        pytest.param(LARGEST, True, id="largest-uint256"),
        pytest.param(ONE_BASE_UNIT_MORE, False, id="one-base-unit-more"),
        pytest.param(REPORTED, False, id="2**256-token-units"),
        pytest.param(HUGE, False, id="5000-digits"),
    ],
)
def test_an_amount_of_2_pow_256_is_a_400_naming_the_field(
    api_client: APIClient, field: str, value: str, accepted: bool
) -> None:
    # given a bond (the only kind that takes amount_per_token) paying in a 6-decimal token
    asset = make_asset(asset_type=Asset.AssetType.BOND_FIXED_RATE)
    # when
    response = api_client.post(f"/api/v1/assets/{asset.pk}/distributions", _body(field, value), format="json")
    # then
    body = response.json()
    if accepted:
        assert response.status_code == 201, body
        assert body[field] == LARGEST
        assert getattr(Distribution.objects.get(), field) == MAX_UINT256
        return
    assert response.status_code == 400, body
    assert body["code"] == "invalid"
    assert list(body["fields"]) == [field], body
    message = body["fields"][field][0]
    assert message.startswith("too large"), message
    assert LARGEST in message, message  # the person is told the most they can send
    assert Distribution.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("amount", {"amount_type": "FIXED"}),
        ("amount_per_token", {"amount_type": "PER_TOKEN", "distribution_type": "BOND_CASH_OUT"}),
    ],
)
def test_the_service_refuses_a_base_unit_amount_of_2_pow_256(field: str, kwargs: dict[str, Any]) -> None:
    # given
    asset = make_asset(asset_type=Asset.AssetType.BOND_FIXED_RATE)
    scheduled_at = timezone.now() + timedelta(hours=2)
    call: dict[str, Any] = {"asset_id": asset.pk, "subtype": "ONE_OFF", "scheduled_at": scheduled_at, **kwargs}
    # when a caller other than the API passes one base unit more than a uint256 holds
    with pytest.raises(InvalidInput) as refused:
        services.distribution_create(**(call | {field: MAX_UINT256 + 1}))
    # then it is refused naming the field, and the largest uint256 is accepted
    assert refused.value.field == field
    assert "too large" in str(refused.value)
    assert Distribution.objects.count() == 0
    created = services.distribution_create(**(call | {field: MAX_UINT256}))
    assert getattr(created, field) == MAX_UINT256
