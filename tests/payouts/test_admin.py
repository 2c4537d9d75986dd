"""The payouts admin: pages render, the progress bar shows, forms refuse what the services refuse, actions
call the services (cancel one occurrence or a whole series)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib.admin import site as admin_site
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from payouts import services
from payouts.models import Distribution, FundsWithdrawal, HolderPayment
from tests.fixtures.users import make_operator
from tests.payouts.factories import address, make_asset, make_distribution, make_holder
from tests.payouts.test_amount_bounds import HUGE, LARGEST, MAX_UINT256, ONE_BASE_UNIT_MORE, REPORTED
from tests.payouts.test_series_cancel import _daily, _series

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged_in() -> Client:
    user = User.objects.create_superuser("boss", password="boss-pass-123")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client() -> Client:
    """A staff user allowed to add distributions: an approver (not a superuser)."""
    user = make_operator("clerk", approver=True)
    client = Client()
    client.force_login(user)
    return client


def test_changelists_render_with_a_progress_bar(admin_client_logged_in: Client) -> None:
    # given a distribution halfway through
    distribution = make_distribution(
        status=Distribution.Status.IN_PROGRESS, holders_count=10, paid_count=5, failed_count=1
    )
    make_holder(asset=distribution.asset)
    # when / then
    page = admin_client_logged_in.get("/admin/payouts/distribution/")
    assert page.status_code == 200
    assert b"width:50%" in page.content
    assert b"5 paid, 1 failed, 4 pending" in page.content
    for path in ("asset", "assetholder", "batchpayout", "holderpayment"):
        assert admin_client_logged_in.get(f"/admin/payouts/{path}/").status_code == 200
    assert admin_client_logged_in.get(f"/admin/payouts/distribution/{distribution.pk}/change/").status_code == 200


def test_the_create_and_import_forms_render(admin_client_logged_in: Client) -> None:
    assert admin_client_logged_in.get("/admin/payouts/distribution/add/").status_code == 200
    assert admin_client_logged_in.get("/admin/payouts/asset/add/").status_code == 200


def test_create_form_refuses_bad_input_and_creates_nothing(admin_client_logged_in: Client) -> None:
    asset = make_asset()
    response = admin_client_logged_in.post(
        "/admin/payouts/distribution/add/",
        {
            "asset": asset.pk,
            "subtype": "ONE_OFF",
            "amount_type": "FIXED",
            "amount": "-3",
            "scheduled_at": "2030-01-01 00:00",
        },
    )
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert Distribution.objects.count() == 0


def test_create_form_creates_a_scheduled_distribution(admin_client_logged_in: Client) -> None:
    asset = make_asset()
    response = admin_client_logged_in.post(
        "/admin/payouts/distribution/add/",
        {
            "asset": asset.pk,
            "subtype": "ONE_OFF",
            "amount_type": "FIXED",
            "amount": "10.5",
            "scheduled_at": "2099-01-01 00:00",
        },
    )
    assert response.status_code == 302
    assert Distribution.objects.get().amount == 10_500_000


def test_create_form_sets_the_catch_up_policy_of_a_recurring_series(admin_client_logged_in: Client) -> None:
    # given
    asset = make_asset()
    form = {"asset": asset.pk, "amount_type": "FIXED", "amount": "10", "scheduled_at": "2099-01-01 00:00"}
    # when a one-off is given a policy, then a recurring series is
    refused = admin_client_logged_in.post(
        "/admin/payouts/distribution/add/", {**form, "subtype": "ONE_OFF", "catch_up": "all"}
    )
    created = admin_client_logged_in.post(
        "/admin/payouts/distribution/add/",
        {**form, "subtype": "RECURRING", "recurrence": "DAILY", "catch_up": "none"},
    )
    # then the one-off is refused with a message, the series keeps its policy
    assert refused.status_code == 200
    assert b"only RECURRING series have a catch-up policy" in refused.content
    assert created.status_code == 302
    assert Distribution.objects.get().catch_up == Distribution.CatchUp.NONE


def test_a_skipped_occurrence_shows_its_reason_and_policy(admin_client_logged_in: Client) -> None:
    # given
    skipped = make_distribution(
        subtype=Distribution.Subtype.RECURRING,
        recurrence=Distribution.Recurrence.DAILY,
        status=Distribution.Status.SKIPPED,
        catch_up=Distribution.CatchUp.LATEST,
        status_reason="missed while the system was down or the asset was paused; occurrence 7 ran instead",
    )
    make_distribution()
    # when
    page = admin_client_logged_in.get(f"/admin/payouts/distribution/{skipped.pk}/change/")
    listed = admin_client_logged_in.get("/admin/payouts/distribution/", {"status__exact": "SKIPPED"})
    # then the page shows why and under which policy; the status filter offers SKIPPED
    assert page.status_code == 200
    assert b"occurrence 7 ran instead" in page.content
    assert b"Catch up" in page.content
    assert b"latest: run the latest missed occurrence" in page.content
    assert b"status__exact=SKIPPED" in listed.content
    assert listed.context["cl"].result_count == 1


def test_cancel_action_cancels_only_scheduled(admin_client_logged_in: Client) -> None:
    # given
    scheduled = make_distribution()
    completed = make_distribution(status=Distribution.Status.COMPLETED)
    # when
    response = admin_client_logged_in.post(
        "/admin/payouts/distribution/",
        {"action": "cancel", "_selected_action": [str(scheduled.pk), str(completed.pk)]},
        follow=True,
    )
    # then
    assert response.status_code == 200
    scheduled.refresh_from_db()
    completed.refresh_from_db()
    assert (scheduled.status, completed.status) == ("CANCELLED", "COMPLETED")
    assert b"only SCHEDULED" in response.content


def test_the_admin_form_and_the_api_show_the_service_refusal_by_its_field(
    admin_client_logged_in: Client, api_client: APIClient
) -> None:
    # given a percentage the service refuses (the form and the serializer only read the number)
    asset = make_asset()
    form = {"asset": asset.pk, "subtype": "ONE_OFF", "amount_type": "PERCENTAGE", "scheduled_at": "2099-01-01 00:00"}
    body = {"subtype": "ONE_OFF", "amount_type": "PERCENTAGE", "scheduled_at": "2099-01-01T00:00:00Z"}
    # when
    page = admin_client_logged_in.post("/admin/payouts/distribution/add/", {**form, "percentage": "100.01"})
    answer = api_client.post(
        f"/api/v1/assets/{asset.pk}/distributions", {**body, "percentage": "100.01"}, format="json"
    )
    # then both show the service's one message, on the percentage field, and nothing is created
    assert page.status_code == 200
    assert page.context["form"].errors == {"percentage": ["must be between 0.01 and 100"]}
    assert answer.status_code == 400
    assert answer.json()["fields"] == {"percentage": ["must be between 0.01 and 100"]}
    assert not Distribution.objects.exists()


@pytest.mark.parametrize(
    ("form", "field", "accepted"),
    [
        pytest.param({"amount_type": "FIXED", "amount": LARGEST}, "amount", True, id="largest-uint256"),
        pytest.param({"amount_type": "FIXED", "amount": ONE_BASE_UNIT_MORE}, "amount", False, id="one-more"),
        pytest.param({"amount_type": "FIXED", "amount": REPORTED}, "amount", False, id="2**256-token-units"),
        pytest.param({"amount_type": "FIXED", "amount": HUGE}, "amount", False, id="5000-digits"),
        pytest.param({"amount_type": "PERCENTAGE", "percentage": HUGE}, "percentage", False, id="huge-percentage"),
    ],
)
def test_the_admin_form_refuses_an_amount_above_uint256(
    staff_client: Client, form: dict[str, str], field: str, accepted: bool
) -> None:
    # given
    asset = make_asset()
    # when
    response = staff_client.post(
        "/admin/payouts/distribution/add/",
        {"asset": asset.pk, "subtype": "ONE_OFF", "scheduled_at": "2099-01-01 00:00", **form},
    )
    # then
    if accepted:
        assert response.status_code == 302, response.content.decode()[-2000:]
        assert Distribution.objects.get().amount == MAX_UINT256
        return
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    if field == "amount":
        assert errors[field][0].startswith("too large"), errors
        assert LARGEST in errors[field][0], errors
    assert Distribution.objects.count() == 0


def test_the_admin_cancels_one_occurrence_or_the_whole_series() -> None:
    # given two DAILY series and an operator in the admin
    client = Client()
    client.force_login(User.objects.create_superuser("cancel-boss", password="cancel-boss-pass-123"))
    asset = make_asset()
    goes_on, ends = _daily(asset), _daily(asset)
    services.distribution_cancel(distribution_id=ends.pk)  # its occurrence 0 skipped, occurrence 1 scheduled
    ends_next = Distribution.objects.get(series_id=ends.series_id, occurrence=1)
    # when one occurrence of the first is cancelled, and the whole second series (two of its rows selected)
    client.post("/admin/payouts/distribution/", {"action": "cancel", "_selected_action": [str(goes_on.pk)]})
    response = client.post(
        "/admin/payouts/distribution/",
        {"action": "cancel_series", "_selected_action": [str(ends.pk), str(ends_next.pk)]},
        follow=True,
    )
    # then the first series goes on, the second has nothing left scheduled; the page says why
    assert _series(goes_on.series_id) == [(0, "CANCELLED", "occurrence"), (1, "SCHEDULED", "")]
    assert _series(ends.series_id) == [(0, "CANCELLED", "occurrence"), (1, "CANCELLED", "series")]
    assert b"Series cancelled: 1" in response.content
    page = client.get(f"/admin/payouts/distribution/{ends_next.pk}/change/")
    assert b"cancelled with its whole series" in page.content


def test_the_admin_form_takes_a_time_zone_and_the_admin_shows_it() -> None:
    # given an operator in the admin
    client = Client()
    client.force_login(User.objects.create_superuser("tz-boss", password="tz-boss-pass-123"))
    asset = make_asset()
    form = {
        "asset": asset.pk,
        "subtype": "RECURRING",
        "recurrence": "DAILY",
        "amount_type": "FIXED",
        "amount": "10",
        "scheduled_at": "2099-01-15 09:00",
    }
    # when an unknown zone is sent, then Madrid
    refused = client.post("/admin/payouts/distribution/add/", {**form, "time_zone": "Mars/Olympus"})
    created = client.post("/admin/payouts/distribution/add/", {**form, "time_zone": "Europe/Madrid"})
    # then the unknown zone is refused on the form; the series runs at 09:00 Madrid and shows its zone
    assert refused.status_code == 200
    assert b"errorlist" in refused.content
    assert created.status_code == 302
    series = Distribution.objects.get()
    assert (series.time_zone, series.recurrence_anchor) == ("Europe/Madrid", datetime(2099, 1, 15, 8, tzinfo=UTC))
    page = client.get(f"/admin/payouts/distribution/{series.pk}/change/")
    listed = client.get("/admin/payouts/distribution/")
    assert b"Europe/Madrid" in page.content
    assert b"09:00 Europe/Madrid" in listed.content


# --- Amounts people read: token units with the symbol, percent not basis points, internal fields labelled ---


def test_the_distribution_pages_show_amounts_in_token_units_with_the_symbol(admin_client_logged_in: Client) -> None:
    # given 5,000 USDC to split, 1,250.5 of it paid
    distribution = make_distribution(
        amount=5_000_000_000, status=Distribution.Status.IN_PROGRESS, paid_amount=1_250_500_000
    )
    # when
    page = admin_client_logged_in.get(f"/admin/payouts/distribution/{distribution.pk}/change/")
    listed = admin_client_logged_in.get("/admin/payouts/distribution/")
    # then the list and the page read the same, in token units with every decimal and the symbol
    assert page.status_code == 200
    text = page.content.decode()
    assert "5,000.000000 USDC" in text
    assert "1,250.500000 USDC" in text
    assert "5000000000" not in text
    assert "5,000.000000 USDC" in listed.content.decode()


def test_a_percentage_reads_as_percent_and_internal_fields_are_labelled(admin_client_logged_in: Client) -> None:
    # given 2.5 % of the payout contract's balance
    distribution = make_distribution(
        amount_type=Distribution.AmountType.PERCENTAGE, amount=None, percentage_bps=250, computed_total=None
    )
    # when
    text = admin_client_logged_in.get(f"/admin/payouts/distribution/{distribution.pk}/change/").content.decode()
    # then percent, not basis points; the bytes32 id sits under the internal fields, saying what it is
    assert "2.50 %" in text
    assert "Percentage bps" not in text
    assert "Internal" in text
    assert "On-chain distribution id (bytes32)" in text
    assert "Chain distribution id" not in text


def test_payments_holders_and_withdrawals_show_token_units(admin_client_logged_in: Client) -> None:
    # given a payment of 1,234.5 USDC, a holder of 100 asset tokens and a withdrawal of 0.000001 USDC
    distribution = make_distribution()
    payment = HolderPayment.objects.create(
        distribution=distribution,
        batch_number=0,
        holder_address=address(7),
        balance=100,
        amount=1_234_500_000,
        updated_at=timezone.now(),
    )
    make_holder(asset=distribution.asset, balance=12_345)
    withdrawal = FundsWithdrawal.objects.create(asset=distribution.asset, to_address=address(8), amount=1)
    symbol = distribution.asset.symbol
    # when / then
    for url, shown in (
        ("/admin/payouts/holderpayment/", "1,234.500000 USDC"),
        (f"/admin/payouts/holderpayment/{payment.pk}/change/", "1,234.500000 USDC"),
        ("/admin/payouts/assetholder/", f"12,345 {symbol}"),
        ("/admin/payouts/fundswithdrawal/", "0.000001 USDC"),
        (f"/admin/payouts/fundswithdrawal/{withdrawal.pk}/change/", "0.000001 USDC"),
    ):
        text = admin_client_logged_in.get(url).content.decode()
        assert shown in text, url
    assert (
        "1234500000"
        not in admin_client_logged_in.get(f"/admin/payouts/holderpayment/{payment.pk}/change/").content.decode()
    )


def test_the_forms_refuse_more_decimals_than_the_token_has(admin_client_logged_in: Client) -> None:
    # given USDC (6 decimals)
    asset = make_asset()
    form = {"asset": asset.pk, "subtype": "ONE_OFF", "amount_type": "FIXED", "scheduled_at": "2099-01-01 00:00"}
    # when one decimal too many is typed, in the create form and in the withdrawal form
    created = admin_client_logged_in.post("/admin/payouts/distribution/add/", {**form, "amount": "1.0000001"})
    withdrawn = admin_client_logged_in.post(
        "/admin/payouts/fundswithdrawal/add/", {"asset": asset.pk, "to_address": address(9), "amount": "0.0000001"}
    )
    # then both say what the token allows, on the amount field
    message = "at most 6 decimal places: USDC has 6 decimals"
    assert created.context["form"].errors == {"amount": [message]}
    assert withdrawn.context["form"].errors == {"amount": [message]}
    assert not Distribution.objects.exists()


def test_the_create_form_takes_token_units_as_the_admin_shows_them(admin_client_logged_in: Client) -> None:
    # given
    asset = make_asset()
    form = {"asset": asset.pk, "subtype": "ONE_OFF", "amount_type": "FIXED", "scheduled_at": "2099-01-01 00:00"}
    # when an amount is typed as the admin shows it, then with a comma that is no thousands separator
    created = admin_client_logged_in.post("/admin/payouts/distribution/add/", {**form, "amount": "5,000.5 USDC"})
    refused = admin_client_logged_in.post("/admin/payouts/distribution/add/", {**form, "amount": "1,5"})
    # then the first is 5,000.5 USDC; the second is refused (never read as 15)
    assert created.status_code == 302
    assert Distribution.objects.get().amount == 5_000_500_000
    assert list(refused.context["form"].errors) == ["amount"]


def test_every_admin_page_has_a_right_plural_name(admin_client_logged_in: Client) -> None:
    # given every model in the admin
    plurals = {model._meta.label: str(model._meta.verbose_name_plural) for model in admin_site._registry}
    # then none is "...ys" after a consonant ("deliverys"), and the index says so too
    wrong = {label: plural for label, plural in plurals.items() if re.search(r"[^aeiou]ys$", plural)}
    assert wrong == {}
    index = admin_client_logged_in.get("/admin/").content.decode()
    assert "Webhook deliveries" in index
    assert "Funds withdrawals" in index
