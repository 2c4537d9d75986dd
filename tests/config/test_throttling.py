"""Rate limits: the API's per user (per token), counted in Redis; 429 with Retry-After and the error body."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.throttling import Rate, check_rates, parse_rate, take

pytestmark = pytest.mark.django_db


def _client_for(username: str) -> APIClient:
    user = User.objects.create_user(username=username, password="pass-123-long", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_the_api_answers_429_with_retry_after_past_the_rate_of_one_token(settings: Settings, clean_redis: None) -> None:
    # given a limit of 3 requests a minute per token
    settings.THROTTLE_API_RATE = "3/min"
    alice, bob = _client_for("alice"), _client_for("bob")
    # when alice makes a fourth request within the minute
    answers = [alice.get("/api/v1/") for _ in range(4)]
    # then it is refused with the common error body and how long to wait
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "throttled"
    assert "Expected available in" in refused.json()["detail"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    # and another token's allowance is its own
    assert bob.get("/api/v1/").status_code == 200


def test_the_api_limit_counts_across_token_and_session_of_one_user(settings: Settings, clean_redis: None) -> None:
    # given one user calling with its token and with an admin session
    settings.THROTTLE_API_RATE = "2/min"
    by_token = _client_for("carol")
    by_session = APIClient()
    assert by_session.login(username="carol", password="pass-123-long")
    # when
    answers = [by_token.get("/api/v1/").status_code, by_session.get("/api/v1/").status_code]
    answers.append(by_token.get("/api/v1/").status_code)
    # then both count against the one allowance
    assert answers == [200, 200, 429]


def test_the_default_rate_is_generous(api_client: APIClient, clean_redis: None) -> None:
    # the default (3000/min per token) never gets in the way of a busy client
    assert [api_client.get("/api/v1/").status_code for _ in range(50)] == [200] * 50


def test_an_empty_rate_means_no_limit(settings: Settings, api_client: APIClient) -> None:
    settings.THROTTLE_API_RATE = ""
    assert take("api-user", "someone", "") is None
    assert api_client.get("/api/v1/").status_code == 200


def test_the_api_still_answers_when_redis_is_unreachable(
    settings: Settings, api_client: APIClient, caplog: pytest.LogCaptureFixture
) -> None:
    # given a cache where nothing listens (the rate limits are then not applied)
    settings.THROTTLE_API_RATE = "1/min"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    caplog.set_level(logging.WARNING)
    # when
    answers = [api_client.get("/api/v1/").status_code for _ in range(3)]
    # then the API works, and says the limit was not checked
    assert answers == [200, 200, 200]
    assert "rate limit not checked" in caplog.text


def test_a_window_ends_and_the_allowance_comes_back(clean_redis: None) -> None:
    # given a limit of 2 per 10 s, used up early in a window
    assert [take("test", "who", "2/10s", now=1000.0) for _ in range(3)] == [None, None, 10]
    assert take("test", "who", "2/10s", now=1007.5) == 3  # Retry-After rounds up
    # then the next window starts afresh
    assert take("test", "who", "2/10s", now=1010.0) is None


@pytest.mark.parametrize(
    ("value", "rate"),
    [("600/min", Rate(600, 60)), ("10/5s", Rate(10, 5)), ("1/h", Rate(1, 3600)), ("7 / day", Rate(7, 86400))],
)
def test_rates_parse(value: str, rate: Rate) -> None:
    assert parse_rate(value) == rate


def test_a_malformed_rate_fails_the_system_check(settings: Settings) -> None:
    settings.THROTTLE_INBOUND_ADDRESS_RATE = "lots"
    [error] = check_rates()
    assert error.id == "config.E001"
    assert "THROTTLE_INBOUND_ADDRESS_RATE" in error.msg
