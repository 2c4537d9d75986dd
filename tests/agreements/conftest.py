"""Fixtures of the agreements suites: keys, configured settings, the local receiver and Discord.

Two key pairs, as in production: `application` is ours (it signs outbound webhooks; the receiver
verifies them with its public half), `service` is the blockchain service's (it signs the inbound
webhooks we verify with BLOCKCHAIN_SERVICE_PUBLIC_KEY).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pytest_django.fixtures import Settings

import agreements.tasks  # noqa: F401 - registers the tasks with the app before a worker starts
from agreements.signing import generate_key_pair
from tests.agreements.servers import DiscordServer, Receiver


@dataclass(frozen=True)
class Application:
    id: str
    private_pem: str
    public_pem: str


@pytest.fixture(scope="session")
def application() -> Application:
    private_pem, public_pem = generate_key_pair(2048)
    return Application(str(uuid.uuid4()), private_pem, public_pem)


@dataclass(frozen=True)
class Service:
    """The blockchain service as it signs what it sends us: its own key pair, and our application id."""

    application_id: str
    private_pem: str
    public_pem: str


@pytest.fixture(scope="session")
def service(application: Application) -> Service:
    private_pem, public_pem = generate_key_pair(2048)
    return Service(application.id, private_pem, public_pem)


@pytest.fixture(scope="session")
def other_application() -> Application:
    """A key pair nobody configured: what a forger would sign with."""
    private_pem, public_pem = generate_key_pair(2048)
    return Application(str(uuid.uuid4()), private_pem, public_pem)


@pytest.fixture
def receiver(application: Application) -> Iterator[Receiver]:
    server = Receiver(public_pem=application.public_pem, application_id=application.id)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def discord() -> Iterator[DiscordServer]:
    server = DiscordServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def agreement_settings(settings: Settings, application: Application, service: Service) -> Settings:
    """Our application's key, the blockchain service's public key, and retry timings short enough for tests."""
    settings.BLOCKCHAIN_APPLICATION_ID = application.id
    # As it comes from a one-line env value: newlines escaped.
    settings.BLOCKCHAIN_APPLICATION_SECRET_KEY = application.private_pem.replace("\n", "\\n")
    settings.BLOCKCHAIN_SERVICE_PUBLIC_KEY = service.public_pem
    settings.BLOCKCHAIN_WEBHOOK_URL = ""
    settings.DISCORD_WEBHOOK_URL = ""
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.WEBHOOK_MAX_RETRIES = 3
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    settings.WEBHOOK_RETRY_MAX_SECONDS = 5.0
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 120
    settings.ALERT_RATE_LIMIT_SECONDS = 600
    return settings


@pytest.fixture
def wired(agreement_settings: Settings, receiver: Receiver, discord: DiscordServer) -> Settings:
    """Outbound webhooks go to the local receiver, alerts to the local Discord."""
    agreement_settings.BLOCKCHAIN_WEBHOOK_URL = receiver.url + "webhook/money-guard"
    agreement_settings.DISCORD_WEBHOOK_URL = discord.url + "api/webhooks/1/secret-token"
    return agreement_settings
