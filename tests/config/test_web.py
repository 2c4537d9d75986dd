"""The web surface: health, readiness, authentication, admin, schema."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config import locks

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok(client: Client) -> None:
    # when
    response = client.get("/healthz")
    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_ok_when_database_and_redis_answer(client: Client) -> None:
    # when
    response = client.get("/readyz")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["redis"] == "ok"


def test_readyz_names_redis_when_it_is_unreachable(client: Client, settings: SettingsWrapper) -> None:
    # given a Redis URL where nothing listens (a password in it must not leak)
    settings.REDIS_URL = "redis://:hunter2@127.0.0.1:1/0"
    # when
    response = client.get("/readyz")
    # then
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["database"] == "ok"
    assert "hunter2" not in response.content.decode()
    locks._client.cache_clear()


def test_api_without_credentials_is_401(anonymous_client: APIClient) -> None:
    # when
    response = anonymous_client.get("/api/v1/")
    # then
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["code"] == "not_authenticated"


def test_api_with_a_bad_token_is_401(anonymous_client: APIClient) -> None:
    # given
    anonymous_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    # when
    response = anonymous_client.get("/api/v1/")
    # then
    assert response.status_code == 401


def test_api_with_a_token_answers(api_client: APIClient) -> None:
    # when
    response = api_client.get("/api/v1/")
    # then
    assert response.status_code == 200
    assert response.json()["user"] == "operator"


def test_api_accepts_a_session(client: Client, operator: object) -> None:
    # given
    assert client.login(username="operator", password="operator-pass-123")
    # when
    response = client.get("/api/v1/")
    # then
    assert response.status_code == 200


def test_admin_login_page_renders(client: Client) -> None:
    # when
    response = client.get("/admin/login/")
    # then
    assert response.status_code == 200
    assert b"id_username" in response.content


def test_admin_is_for_staff_only(client: Client) -> None:
    # given a user who is not staff
    get_user_model().objects.create_user(username="someone", password="someone-pass-123")
    client.login(username="someone", password="someone-pass-123")
    # when
    response = client.get("/admin/")
    # then it is sent to the login page
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/assets", "/api/v1/agreements/", "/api/v1/webhook-deliveries/"])
def test_the_api_is_for_staff_only(path: str) -> None:
    # given a user who is not staff, with an API token and a session
    user = get_user_model().objects.create_user(username="someone", password="someone-pass-123")
    by_token, by_session = APIClient(), APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    by_session.login(username="someone", password="someone-pass-123")
    # when
    answers = [by_token.get(path), by_session.get(path)]
    # then both are refused, saying why
    assert [answer.status_code for answer in answers] == [403, 403]
    assert all("permission" in answer.json()["detail"] for answer in answers)


def test_openapi_schema_and_docs_render(client: Client) -> None:
    # when
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")
    # then
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert docs.status_code == 200
