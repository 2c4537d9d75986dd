"""Fixtures shared by every suite: API clients, users, a real Celery worker on the Redis broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery.worker import WorkController
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from config.locks import redis_client
from tests.fixtures.users import make_operator, token_client
from tests.fixtures.workers import running_worker

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.chain",
    "tests.fixtures.hostile",
    "tests.fixtures.mirror_node",
    "tests.fixtures.payouts",
]


@pytest.fixture(autouse=True)
def _plain_static_files(settings: Settings) -> None:
    """Production serves hashed static files from a manifest built by collectstatic; tests do not."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def operator(db: None) -> User:
    """A staff operator in the approvers group: may read and change everything (not a superuser)."""
    return make_operator("operator", approver=True, password="operator-pass-123")


@pytest.fixture
def api_client(operator: User) -> APIClient:
    """An API client authenticated with the operator's token."""
    return token_client(operator)


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def clean_redis() -> None:
    """Start from an empty Redis: no stale broker messages, locks or cursors from other tests."""
    redis_client().flushdb()


@pytest.fixture
def celery_worker(
    request: pytest.FixtureRequest, transactional_db: None, clean_redis: None
) -> Iterator[WorkController]:
    """A real Celery worker (threads pool) consuming every queue from the Redis broker.

    Tasks run in other threads with their own database connections, so tests that use it see only
    committed data: hence `transactional_db`. In a chain test the chain is set up first, so that it
    is reverted only after the worker has stopped (a task still sending then would leak a
    transaction into the next test).
    """
    if "chain_client" in request.fixturenames:
        request.getfixturevalue("chain_client")
    with running_worker() as worker:
        yield worker
