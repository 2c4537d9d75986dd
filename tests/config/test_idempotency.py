"""Idempotency-Key on the money- and state-moving POSTs, through the real API on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from agreements.models import Agreement, WebhookDelivery
from chain.lane.models import ChainTransaction
from config import tasks
from config.models import IdempotencyKey
from payouts.models import Asset, Distribution
from tests.agreements.test_api import VALID
from tests.fixtures.users import make_operator
from tests.payouts.factories import make_asset, make_distribution

if TYPE_CHECKING:
    from rest_framework.response import _MonkeyPatchedResponse as Response

AGREEMENT = {
    **VALID,
    "creditor_id": "6d3f3d2e-8c1a-4a55-9f53-0c0e3f7a1b01",
    "debtor_id": "0f8f5a41-2b7c-4f7e-a0a4-5c2a9d1e2f02",
}

# Every POST under /api/v1/ that creates or moves money or state (the inbound webhook is not under it).
IN_SCOPE = {
    "/api/v1/assets/import",
    "/api/v1/assets/{asset_id}/pause",
    "/api/v1/assets/{asset_id}/unpause",
    "/api/v1/assets/{asset_id}/sync",
    "/api/v1/assets/{asset_id}/enable-sync",
    "/api/v1/assets/{asset_id}/disable-sync",
    "/api/v1/assets/{asset_id}/distributions",
    "/api/v1/distributions/{distribution_id}/execute",
    "/api/v1/distributions/{distribution_id}/cancel",
    "/api/v1/distributions/{distribution_id}/retry",
    "/api/v1/assets/{asset_id}/withdrawals",
    "/api/v1/agreements/",
    "/api/v1/agreements/{agreement_id}/transition/",
    "/api/v1/agreements/{agreement_id}/payments/",
    "/api/v1/agreements/{agreement_id}/payments/{payment_id}/cancel/",
    "/api/v1/agreements/{agreement_id}/payments/{payment_id}/pay/",
    "/api/v1/webhook-deliveries/{delivery_id}/resend/",
    "/api/v1/webhook-deliveries/resend-failed/",
    "/api/v1/blockchain-events/{event_id}/reprocess/",
    "/api/v1/chain/transactions/{transaction_id}/cancel",
}


def _one_off(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subtype": "ONE_OFF",
        "amount_type": "FIXED",
        "amount": "1250.5",
        "scheduled_at": (timezone.now() + timedelta(hours=2)).isoformat(),
    }
    body.update(overrides)
    return body


def _client_for(user: User) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _post(client: APIClient, path: str, body: Any = None, *, key: str | None = None) -> Response:
    return client.post(path, body, format="json", headers={} if key is None else {"Idempotency-Key": key})


@pytest.mark.django_db
def test_a_retried_create_with_the_same_key_returns_the_original_distribution(api_client: APIClient) -> None:
    # given a create that timed out on the client's side after it succeeded on ours
    asset = make_asset()
    body = _one_off()
    first = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", body, key="payout-2026-q1")
    # when the client retries with the same key and body
    retry = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", body, key="payout-2026-q1")
    # then one distribution exists and the retry answers with it, byte for byte
    assert first.status_code == 201, first.json()
    assert Distribution.objects.count() == 1
    assert retry.status_code == 201
    assert retry.content == first.content
    assert retry.json()["id"] == str(Distribution.objects.get().pk)
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first


@pytest.mark.django_db
def test_the_same_body_with_reordered_keys_is_the_same_request(api_client: APIClient) -> None:
    # given
    asset = make_asset()
    body = _one_off()
    first = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", body, key="k-1")
    # when the retry serialises its JSON object in another key order
    retry = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", dict(reversed(body.items())), key="k-1")
    # then it is recognised as the same request
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry["Idempotent-Replayed"] == "true"
    assert Distribution.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_refused_with_422(api_client: APIClient) -> None:
    # given a distribution created with a key
    asset = make_asset()
    other = make_asset()
    first = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", _one_off(amount="10"), key="k-1")
    # when the key is sent again with another amount, or to another asset
    another_body = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", _one_off(amount="20"), key="k-1")
    another_path = _post(api_client, f"/api/v1/assets/{other.pk}/distributions", _one_off(amount="10"), key="k-1")
    # then both are refused, say what to do, and create nothing
    assert first.status_code == 201
    for refused in (another_body, another_path):
        assert refused.status_code == 422, refused.json()
        assert refused.json()["code"] == "idempotency_key_reused"
        assert "Send a new key" in refused.json()["detail"]
        assert "Idempotent-Replayed" not in refused
    assert Distribution.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "k" * 256, "clé", "tab\there", "line\nbreak"])
def test_a_malformed_key_is_refused_with_400_and_changes_nothing(api_client: APIClient, key: str) -> None:
    # given
    asset = make_asset()
    # when
    response = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", _one_off(), key=key)
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "Idempotency-Key" in response.json()["fields"]
    assert "printable ASCII" in response.json()["detail"]
    assert Distribution.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_a_key_of_255_printable_characters_is_accepted(api_client: APIClient) -> None:
    asset = make_asset()
    response = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", _one_off(), key="a ~" + "x" * 252)
    assert response.status_code == 201


@pytest.fixture
def threaded_clients(transactional_db: None) -> list[APIClient]:
    """Eight clients of one user, each used from its own thread (so its own database connection)."""
    user = make_operator("service", approver=True)
    return [_client_for(user) for _ in range(8)]


def test_concurrent_requests_with_one_key_create_one_distribution(threaded_clients: list[APIClient]) -> None:
    # given eight retries of one create, released at the same instant
    asset = make_asset()
    body = _one_off()
    barrier = threading.Barrier(len(threaded_clients))

    def send(client: APIClient) -> Response:
        try:
            barrier.wait(timeout=10)
            return _post(client, f"/api/v1/assets/{asset.pk}/distributions", body, key="same-key")
        finally:
            connection.close()

    # when
    with ThreadPoolExecutor(max_workers=len(threaded_clients)) as pool:
        responses = list(pool.map(send, threaded_clients))
    # then one distribution was created and every request was answered with it
    assert [r.status_code for r in responses] == [201] * 8, [r.content for r in responses]
    assert Distribution.objects.count() == 1
    assert {r.json()["id"] for r in responses} == {str(Distribution.objects.get().pk)}
    assert sorted(r.get("Idempotent-Replayed", "original") for r in responses) == ["original"] + ["true"] * 7


def test_a_request_that_waits_too_long_for_its_key_is_told_to_retry_with_409(transactional_db: None) -> None:
    # given a request holding the key in its open transaction (simulated on another connection)
    user = make_operator("service", approver=True)
    client = _client_for(user)
    asset = make_asset()
    holding, release = threading.Event(), threading.Event()

    def hold_the_key() -> None:
        try:
            with transaction.atomic():
                IdempotencyKey.objects.create(user=user, key="busy", fingerprint="0" * 64, method="POST", path="/")
                holding.set()
                release.wait(timeout=30)
                transaction.set_rollback(True)  # that request failed: the key is free again
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_key)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        # A short lock_timeout on this test's connection keeps the test fast (production: DB_LOCK_TIMEOUT_MS).
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        # when the retry arrives while the first one still runs
        waited = _post(client, f"/api/v1/assets/{asset.pk}/distributions", _one_off(), key="busy")
    finally:
        release.set()
        holder.join(timeout=30)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    # then it is told to retry, nothing was created, and a retry after the first one ended goes through
    assert waited.status_code == 409, waited.json()
    assert waited.json() == {
        "code": "idempotency_key_in_use",
        "detail": "A request with this Idempotency-Key is still running; retry shortly.",
    }
    assert Distribution.objects.count() == 0
    again = _post(client, f"/api/v1/assets/{asset.pk}/distributions", _one_off(), key="busy")
    assert again.status_code == 201
    assert Distribution.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_user(api_client: APIClient) -> None:
    # given another user who happens to pick the same key
    asset = make_asset()
    other = _client_for(make_operator("other", approver=True))
    body = _one_off()
    mine = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", body, key="invoice-42")
    # when
    theirs = _post(other, f"/api/v1/assets/{asset.pk}/distributions", body, key="invoice-42")
    # then each got their own distribution; nothing was replayed across users
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs
    assert mine.json()["id"] != theirs.json()["id"]
    assert Distribution.objects.count() == 2


@pytest.mark.django_db
def test_a_failed_request_does_not_burn_its_key(api_client: APIClient) -> None:
    # given a create refused because the asset is paused (409), then one refused as invalid (400)
    asset = make_asset(is_paused=True)
    body = _one_off()
    paused = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", body, key="k-1")
    invalid = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", {**body, "amount": "-1"}, key="k-1")
    assert (paused.status_code, invalid.status_code) == (409, 400)
    assert paused.json()["code"] == "conflict"
    assert IdempotencyKey.objects.count() == 0
    # when the operator unpauses the asset and the client sends the first request again with its key
    Asset.objects.filter(pk=asset.pk).update(is_paused=False)
    retried = _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", body, key="k-1")
    # then it runs, as it was never stored
    assert retried.status_code == 201, retried.json()
    assert "Idempotent-Replayed" not in retried
    assert Distribution.objects.count() == 1


@pytest.mark.django_db
def test_a_retried_pause_is_replayed_instead_of_refused_and_pauses_on_chain_once(api_client: APIClient) -> None:
    # given
    asset = make_asset()
    first = _post(api_client, f"/api/v1/assets/{asset.pk}/pause", key="pause-1")
    # when retried with its key (without one it would be a 409: already paused)
    retry = _post(api_client, f"/api/v1/assets/{asset.pk}/pause", key="pause-1")
    # then
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true"
    asset.refresh_from_db()
    assert asset.pause_generation == 1
    assert ChainTransaction.objects.filter(intent_key__startswith=f"payout-pause:{asset.pk}:").count() == 1


@pytest.mark.django_db
def test_a_retried_execute_is_replayed_with_its_202(api_client: APIClient, funded_asset: Asset) -> None:
    # given (a start reads the payout contract's balance: a real, funded asset on anvil)
    distribution = make_distribution(asset=funded_asset)
    first = _post(api_client, f"/api/v1/distributions/{distribution.pk}/execute", key="run-1")
    # when
    retry = _post(api_client, f"/api/v1/distributions/{distribution.pk}/execute", key="run-1")
    # then
    assert (first.status_code, retry.status_code) == (202, 202)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_agreement_create_and_transition_are_idempotent(api_client: APIClient) -> None:
    # given an agreement created with a key, and created again with it
    created = _post(api_client, "/api/v1/agreements/", AGREEMENT, key="agreement-1")
    created_again = _post(api_client, "/api/v1/agreements/", AGREEMENT, key="agreement-1")
    agreement_id = created.json()["id"]
    # when it is moved on twice with one key
    moved = _post(api_client, f"/api/v1/agreements/{agreement_id}/transition/", {"status": "BEFORE_PROGRESS"}, key="t1")
    moved_again = _post(
        api_client, f"/api/v1/agreements/{agreement_id}/transition/", {"status": "BEFORE_PROGRESS"}, key="t1"
    )
    # then one agreement, one transition, one webhook, and the retries got the original answers
    assert (created.status_code, created_again.status_code) == (201, 201)
    assert created_again.content == created.content
    assert created_again["Idempotent-Replayed"] == "true"
    assert Agreement.objects.count() == 1
    assert (moved.status_code, moved_again.status_code) == (200, 200), moved_again.json()
    assert moved_again.content == moved.content
    assert moved_again["Idempotent-Replayed"] == "true"
    assert Agreement.objects.get().status == Agreement.Status.BEFORE_PROGRESS
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_redis")
def test_keys_past_retention_are_purged(api_client: APIClient, operator: User) -> None:
    # given keys stored 23 and 25 hours ago (retention: 24 h)
    asset = make_asset()
    for key in ("recent", "old"):
        assert _post(api_client, f"/api/v1/assets/{asset.pk}/distributions", _one_off(), key=key).status_code == 201
    now = timezone.now()
    IdempotencyKey.objects.filter(key="recent").update(created_at=now - timedelta(hours=23))
    IdempotencyKey.objects.filter(key="old").update(created_at=now - timedelta(hours=25))
    # when the periodic purge runs
    purged = tasks.purge_idempotency_keys_task()
    # then only the old key is gone; the recent one still replays
    assert purged == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]
    kept = IdempotencyKey.objects.get(key="recent")
    assert (kept.user, kept.response_status) == (operator, 201)


def test_a_retention_below_24_hours_is_refused_at_settings_load() -> None:
    # given
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "IDEMPOTENCY_KEY_TTL_HOURS": "23"}
    # when
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, check=False
    )
    # then
    assert result.returncode != 0
    assert "IDEMPOTENCY_KEY_TTL_HOURS=23: keys must be kept at least 24 hours" in result.stderr


def test_the_purge_is_a_declared_periodic_task() -> None:
    from config.celery_app import declared_schedules

    tasks_declared = {schedule.task for schedule in declared_schedules().values()}
    assert "config.tasks.purge_idempotency_keys_task" in tasks_declared


@pytest.mark.django_db
def test_schema_documents_the_idempotency_key_on_every_money_moving_post(api_client: APIClient) -> None:
    # when
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    # then the header is on exactly the in-scope operations
    operations = {
        (path, method): operation for path, methods in schema["paths"].items() for method, operation in methods.items()
    }
    with_header = {
        (path, method)
        for (path, method), operation in operations.items()
        if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert with_header == {(path, "post") for path in IN_SCOPE}
    # with the error answers, in the project's error body, next to the success answers the view declared
    for path in IN_SCOPE:
        responses = operations[(path, "post")]["responses"]
        assert [code for code in responses if code.startswith("2") and responses[code].get("content")], path
        for code in ("409", "422"):
            assert responses[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"code", "detail", "fields"}
    assert "idempotency_key_reused" in operations[("/api/v1/agreements/", "post")]["responses"]["422"]["description"]
    # and the request and response bodies declared by each view are still there
    create = operations[("/api/v1/assets/{asset_id}/distributions", "post")]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DistributionCreateRequest"
    }
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Distribution"
    }
    pause = operations[("/api/v1/assets/{asset_id}/pause", "post")]
    assert "requestBody" not in pause
    assert {"200", "202"} <= set(pause["responses"])
    transition = operations[("/api/v1/agreements/{agreement_id}/transition/", "post")]
    assert transition["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AgreementTransitionRequest"
    }
    assert transition["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Agreement"
    }
    resend_failed = operations[("/api/v1/webhook-deliveries/resend-failed/", "post")]
    assert set(resend_failed["responses"]) == {"202", "409", "422"}
