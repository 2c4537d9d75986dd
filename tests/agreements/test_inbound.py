"""`POST /blockchain/webhook`: authentication, validation, storing once, processing by a real worker.

Requests are signed by an independent implementation of the documented scheme
(`tests.agreements.servers.sign_documented`) with the blockchain service's key, as the service would.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import requests
from celery.contrib.testing.worker import start_worker
from django.test import Client
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from agreements.models import Agreement, AgreementBlockchainLog, InboundBlockchainEvent
from agreements.tasks import sweep_webhook_deliveries_task
from config.celery_app import app as celery_app
from tests.agreements.conftest import Application, Service
from tests.agreements.factories import AgreementFactory
from tests.agreements.servers import DiscordServer, field_of, sign_documented
from tests.fixtures.waiting import wait_for

URL = "/blockchain/webhook"
CONTRACT = "0x" + "ab" * 20


def _event(agreement_id: object, *, type_: str = "CREATE", tx_hash: str | None = None, **data: Any) -> bytes:
    fields: dict[str, Any] = {
        "agreement_id": str(agreement_id),
        "tx_hash": tx_hash or "0x" + secrets.token_hex(32),
        "tx_block_number": 123456,
        "tx_block_timestamp": 1_712_345_678,
        "contract_address": CONTRACT,
        "data": {},
    }
    return json.dumps({"type": type_, "data": fields | data}).encode()


def _headers(service: Service, body: bytes, **overrides: Any) -> dict[str, str]:
    signed = sign_documented(
        body=body,
        private_pem=overrides.pop("private_pem", service.private_pem),
        application_id=overrides.pop("application_id", service.application_id),
        webhook_id=overrides.pop("webhook_id", f"msg_{uuid.uuid4().hex}"),
        timestamp=overrides.pop("timestamp", None),
    )
    return signed | overrides


def _post(client: Client, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def _nothing_stored() -> bool:
    return not InboundBlockchainEvent.objects.exists() and not AgreementBlockchainLog.objects.exists()


# --- Refused requests: nothing stored -------------------------------------------------------------
@pytest.mark.django_db
class TestRefused:
    def test_unsigned(self, client: Client) -> None:
        agreement = AgreementFactory.create()
        response = _post(client, _event(agreement.id), {})
        assert response.status_code == 401
        assert "Missing authentication headers" in response.json()["detail"]
        assert _nothing_stored()

    def test_forged_with_another_key(self, client: Client, service: Service, other_application: Application) -> None:
        body = _event(AgreementFactory.create().id)
        response = _post(client, body, _headers(service, body, private_pem=other_application.private_pem))
        assert response.status_code == 401
        assert response.json() == {"code": "not_authenticated", "detail": "No valid signature."}
        assert _nothing_stored()

    def test_signed_with_our_own_private_key(self, client: Client, service: Service, application: Application) -> None:
        # given a message signed with OUR key pair's private half (which signs outbound only): whoever
        # holds it could impersonate us, so it must never authenticate what the service sends us
        body = _event(AgreementFactory.create().id)
        # when
        response = _post(client, body, _headers(service, body, private_pem=application.private_pem))
        # then
        assert response.status_code == 401
        assert response.json() == {"code": "not_authenticated", "detail": "No valid signature."}
        assert _nothing_stored()

    def test_signed_with_our_own_key_even_when_it_is_configured_as_the_service_key(
        self, client: Client, service: Service, application: Application, settings: Any
    ) -> None:
        # given a mistake: our own public key pasted into BLOCKCHAIN_SERVICE_PUBLIC_KEY beside the service's
        settings.BLOCKCHAIN_SERVICE_PUBLIC_KEY = service.public_pem + application.public_pem
        body = _event(AgreementFactory.create().id)
        # when
        ours = _post(client, body, _headers(service, body, private_pem=application.private_pem))
        theirs = _post(client, body, _headers(service, body))
        # then our key is still never accepted inbound; the service's is
        assert ours.status_code == 401
        assert theirs.status_code == 202

    def test_no_service_key_configured(self, client: Client, service: Service, settings: Any) -> None:
        settings.BLOCKCHAIN_SERVICE_PUBLIC_KEY = ""
        body = _event(AgreementFactory.create().id)
        response = _post(client, body, _headers(service, body))
        assert response.status_code == 401
        assert response.json()["detail"] == "Signatures cannot be verified."
        assert _nothing_stored()

    def test_body_changed_after_signing(self, client: Client, service: Service) -> None:
        agreement = AgreementFactory.create()
        headers = _headers(service, _event(agreement.id, tx_block_number=1))
        response = _post(client, _event(agreement.id, tx_block_number=2), headers)
        assert response.status_code == 401
        assert _nothing_stored()

    def test_unknown_application(self, client: Client, service: Service) -> None:
        body = _event(AgreementFactory.create().id)
        response = _post(client, body, _headers(service, body, application_id=str(uuid.uuid4())))
        assert response.status_code == 401
        assert response.json()["detail"] == "Unknown application id."
        assert _nothing_stored()

    # The future case has margin: a slow run must not bring "now + skew" back within 300 s.
    @pytest.mark.parametrize("skew", [-301, 310])
    def test_expired_or_future_timestamp(self, client: Client, service: Service, skew: int) -> None:
        body = _event(AgreementFactory.create().id)
        response = _post(client, body, _headers(service, body, timestamp=int(time.time()) + skew))
        assert response.status_code == 401
        assert "more than 300 seconds off" in response.json()["detail"]
        assert _nothing_stored()

    def test_garbage_signature(self, client: Client, service: Service) -> None:
        body = _event(AgreementFactory.create().id)
        headers = _headers(service, body)
        headers["webhook-signature"] = "v1-rsa-pss,not!!base64 v1,AAAA"
        assert _post(client, body, headers).status_code == 401
        assert _nothing_stored()

    def test_invalid_json(self, client: Client, service: Service) -> None:
        body = b'{"type": "CREATE", "data": '
        response = _post(client, body, _headers(service, body))
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_json"
        assert _nothing_stored()

    @pytest.mark.parametrize("depth", [65, 100_000])
    def test_deeply_nested_json(self, client: Client, service: Service, depth: int) -> None:
        # a body nested past any real event: refused before it is parsed (parsing 100,000 levels
        # crashed the web worker with SIGSEGV)
        body = b'{"type": "CREATE", "data": ' + b"[" * depth + b"]" * depth + b"}"
        response = _post(client, body, _headers(service, body))
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_json"
        assert "nested" in response.json()["detail"]
        assert _nothing_stored()

    def test_wrong_types_name_each_field(self, client: Client, service: Service) -> None:
        # given numbers sent as strings, a bad hash, a bad address, a bad type
        body = json.dumps(
            {
                "type": "DELETE",
                "data": {
                    "agreement_id": "not-a-uuid",
                    "tx_hash": "0x123",
                    "tx_block_number": "123456",
                    "tx_block_timestamp": True,
                    "contract_address": "0xzz",
                    "data": [],
                },
            }
        ).encode()
        # when
        response = _post(client, body, _headers(service, body))
        # then
        assert response.status_code == 400
        assert set(response.json()["fields"]) == {
            "type",
            "data.agreement_id",
            "data.tx_hash",
            "data.tx_block_number",
            "data.tx_block_timestamp",
            "data.contract_address",
            "data.data",
        }
        assert _nothing_stored()

    def test_update_without_completed_or_cancelled(self, client: Client, service: Service) -> None:
        body = _event(AgreementFactory.create().id, type_="UPDATE", data={"event_type": "PAUSED"})
        response = _post(client, body, _headers(service, body))
        assert response.status_code == 400
        assert "data.data.event_type" in response.json()["fields"]
        assert _nothing_stored()

    def test_too_large(self, client: Client, service: Service) -> None:
        body = _event(AgreementFactory.create().id, data={"padding": "x" * (256 * 1024)})
        response = _post(client, body, _headers(service, body))
        assert response.status_code == 413
        assert _nothing_stored()

    def test_unknown_agreement(self, client: Client, service: Service) -> None:
        body = _event(uuid.uuid4())
        response = _post(client, body, _headers(service, body))
        assert response.status_code == 422
        assert response.json()["code"] == "unknown_agreement"
        assert _nothing_stored()

    def test_get_is_not_allowed(self, client: Client) -> None:
        assert client.get(URL).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("as_list", [False, True], ids=["concatenated-pem", "list"])
def test_while_the_service_rotates_its_key_both_keys_are_accepted(
    client: Client, service: Service, other_application: Application, settings: Any, as_list: bool
) -> None:
    # given the service's old and new public keys configured together
    keys = [service.public_pem, other_application.public_pem]
    settings.BLOCKCHAIN_SERVICE_PUBLIC_KEY = keys if as_list else "\n".join(keys).replace("\n", "\\n")
    first, second = _event(AgreementFactory.create().id), _event(AgreementFactory.create().id)
    # when one message is signed with the old key, one with the new
    old = _post(client, first, _headers(service, first))
    new = _post(client, second, _headers(service, second, private_pem=other_application.private_pem))
    # then both are stored
    assert (old.status_code, new.status_code) == (202, 202)


@pytest.mark.django_db
class TestReplayAndDuplicates:
    def test_same_id_same_body_is_acknowledged_again_but_another_body_is_refused(
        self, client: Client, service: Service
    ) -> None:
        # given one stored event
        agreement = AgreementFactory.create()
        body = _event(agreement.id)
        headers = _headers(service, body, webhook_id="msg_replayed")
        assert _post(client, body, headers).status_code == 202
        # when the same message comes again, then a different body under the same id
        again = _post(client, body, _headers(service, body, webhook_id="msg_replayed"))
        other_body = _event(agreement.id)
        replayed = _post(client, other_body, _headers(service, other_body, webhook_id="msg_replayed"))
        # then
        assert again.status_code == 200
        assert again.json()["code"] == "duplicate"
        assert replayed.status_code == 409
        assert replayed.json()["code"] == "replayed"
        assert InboundBlockchainEvent.objects.count() == 1

    def test_a_known_tx_hash_under_a_new_id_is_acknowledged_and_changes_nothing(
        self, client: Client, service: Service
    ) -> None:
        # given
        agreement = AgreementFactory.create()
        body = _event(agreement.id, tx_hash="0x" + "11" * 32)
        assert _post(client, body, _headers(service, body)).status_code == 202
        # when the blockchain service sends the same transaction again (new id, new timestamp)
        resent = _event(agreement.id, tx_hash="0x" + "11" * 32, tx_block_number=999)
        response = _post(client, resent, _headers(service, resent))
        # then
        assert response.status_code == 200
        assert InboundBlockchainEvent.objects.get().payload["data"]["tx_block_number"] == 123456


# --- End to end with a worker ---------------------------------------------------------------------
def _send_concurrently(live_server: LiveServer, requests_: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    def send(item: tuple[bytes, dict[str, str]]) -> int:
        body, headers = item
        response = requests.post(
            live_server.url + URL, data=body, headers=headers | {"Content-Type": "application/json"}, timeout=30
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        return list(pool.map(send, requests_))


@pytest.mark.usefixtures("celery_worker")
def test_each_event_is_logged_once_even_when_sent_ten_times_concurrently(
    live_server: LiveServer, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # given an agreement and its three on-chain events
    agreement = AgreementFactory.create(status=Agreement.Status.BEFORE_PROGRESS)
    create = _event(agreement.id, type_="CREATE", tx_hash="0x" + "01" * 32, tx_block_number=100)
    init = _event(agreement.id, type_="INIT_DATA", tx_hash="0x" + "02" * 32, tx_block_number=101)
    update = _event(
        agreement.id, type_="UPDATE", tx_hash="0x" + "03" * 32, tx_block_number=102, data={"event_type": "COMPLETED"}
    )
    # when each is sent 10 times at once: CREATE as retries of one message (one webhook-id),
    # the others re-signed under new ids each time
    create_headers = _headers(service, create, webhook_id="msg_create")
    statuses = _send_concurrently(live_server, [(create, create_headers)] * 10)
    statuses += _send_concurrently(live_server, [(init, _headers(service, init)) for _ in range(10)])
    statuses += _send_concurrently(live_server, [(update, _headers(service, update)) for _ in range(10)])
    # then each was stored once (202) and acknowledged as a duplicate otherwise (200)
    assert sorted(statuses) == [200] * 27 + [202] * 3
    wait_for(lambda: InboundBlockchainEvent.objects.filter(status="PROCESSED").count() == 3)
    logs = {log.tx_hash: log for log in AgreementBlockchainLog.objects.all()}
    assert {h: log.event_type for h, log in logs.items()} == {
        "0x" + "01" * 32: "issued",
        "0x" + "02" * 32: "initialized",
        "0x" + "03" * 32: "completed",
    }
    assert logs["0x" + "03" * 32].data == {"event_type": "COMPLETED"}
    # CREATE set the agreement's on-chain fields
    agreement.refresh_from_db()
    assert agreement.tx_hash == "0x" + "01" * 32
    assert agreement.tx_block_number == 100
    assert agreement.tx_block_timestamp is not None
    assert int(agreement.tx_block_timestamp.timestamp()) == 1_712_345_678
    assert agreement.contract_address == CONTRACT
    # and no signature reached the logs
    assert create_headers["webhook-signature"].split(",", 1)[1] not in caplog.text


def test_processing_errors_are_retried_three_times_then_alerted(
    transactional_db: None,
    clean_redis: None,
    live_server: LiveServer,
    service: Service,
    discord: DiscordServer,
    settings: Any,
) -> None:
    # given an event stored while no worker runs, whose agreement is deleted before processing
    settings.DISCORD_WEBHOOK_URL = discord.url
    agreement = AgreementFactory.create()
    body = _event(agreement.id, type_="INIT_DATA")
    [status] = _send_concurrently(live_server, [(body, _headers(service, body))])
    assert status == 202
    Agreement.objects.filter(id=agreement.id).delete()
    # when a worker picks it up
    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"):
        wait_for(lambda: InboundBlockchainEvent.objects.get().status == "FAILED", timeout=30)
        wait_for(lambda: discord.messages, timeout=10)
    # then 1 try + 3 retries, and one alert naming the event
    event = InboundBlockchainEvent.objects.get()
    assert event.attempt_count == 4
    assert "DoesNotExist" in event.last_error
    [alert] = discord.messages
    assert alert["allowed_mentions"] == {"parse": []}
    assert field_of(alert["embeds"][0], "Agreement") == str(agreement.id)
    assert field_of(alert["embeds"][0], "Inbound event") == str(event.id)
    assert not AgreementBlockchainLog.objects.exists()


def test_the_sweeper_processes_events_whose_message_was_lost(
    celery_worker: object, service: Service, settings: Any
) -> None:
    # given an event stored long ago whose task message never reached the broker
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 60
    agreement = AgreementFactory.create()
    event = InboundBlockchainEvent.objects.create(
        webhook_id="msg_lost",
        body_sha256="0" * 64,
        type="INIT_DATA",
        agreement_id=agreement.id,
        tx_hash="0x" + "44" * 32,
        payload=json.loads(_event(agreement.id, type_="INIT_DATA", tx_hash="0x" + "44" * 32)),
        next_attempt_at=timezone.now() - timedelta(minutes=5),
    )
    # when the periodic sweeper runs
    swept = sweep_webhook_deliveries_task()
    # then it is processed
    assert swept == {"deliveries": 0, "inbound_events": 1, "owed_alerts": 0}
    wait_for(lambda: InboundBlockchainEvent.objects.get(id=event.id).status == "PROCESSED")
    assert AgreementBlockchainLog.objects.get().event_type == "initialized"


# --- Rate limits ----------------------------------------------------------------------------------
@pytest.mark.django_db
class TestRateLimits:
    def test_per_client_address(self, client: Client, service: Service, settings: Any, clean_redis: None) -> None:
        # given a limit of 2 requests a minute per client address
        settings.THROTTLE_INBOUND_ADDRESS_RATE = "2/min"
        agreement = AgreementFactory.create()
        bodies = [_event(agreement.id) for _ in range(4)]

        def post(body: bytes, address: str, **extra: str) -> Any:
            return _post_from(client, body, _headers(service, body), address, **extra)

        # when one address sends three, the third forging X-Forwarded-For to look like someone else
        answers = [post(bodies[0], "192.0.2.1"), post(bodies[1], "192.0.2.1")]
        answers.append(post(bodies[2], "192.0.2.1", HTTP_X_FORWARDED_FOR="198.51.100.7"))
        # then the third is refused with the common error body and Retry-After, and stores nothing
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[2].json()["code"] == "throttled"
        assert 1 <= int(answers[2]["Retry-After"]) <= 60
        assert InboundBlockchainEvent.objects.count() == 2
        # and another address has its own allowance
        assert post(bodies[3], "192.0.2.2").status_code == 202

    def test_behind_a_trusted_proxy_the_forwarded_address_counts(
        self, client: Client, service: Service, settings: Any, clean_redis: None
    ) -> None:
        # given one proxy in front, which appends the client's address to X-Forwarded-For
        settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"NUM_PROXIES": 1}
        settings.THROTTLE_INBOUND_ADDRESS_RATE = "1/min"
        agreement = AgreementFactory.create()

        def post(forwarded_for: str) -> int:
            body = _event(agreement.id)
            response = _post_from(
                client, body, _headers(service, body), "203.0.113.10", HTTP_X_FORWARDED_FOR=forwarded_for
            )
            return int(response.status_code)

        # when two clients come through the same proxy, one twice
        answers = [post("192.0.2.1"), post("spoofed, 192.0.2.1"), post("192.0.2.2")]
        # then each client is counted by the address the proxy saw
        assert answers == [202, 429, 202]

    def test_per_application_counts_only_verified_messages(
        self, client: Client, service: Service, other_application: Application, settings: Any, clean_redis: None
    ) -> None:
        # given a limit of 2 messages a minute for our application, whatever the address
        settings.THROTTLE_INBOUND_APPLICATION_RATE = "2/min"
        agreement = AgreementFactory.create()
        # when forgers naming our application id send 5 messages first
        forged = [_event(agreement.id) for _ in range(5)]
        forged_answers = [
            _post_from(client, b, _headers(service, b, private_pem=other_application.private_pem), f"192.0.2.{n}")
            for n, b in enumerate(forged)
        ]
        # and the service then sends 3 from 3 addresses
        bodies = [_event(agreement.id) for _ in range(3)]
        answers = [_post_from(client, b, _headers(service, b), f"198.51.100.{n}") for n, b in enumerate(bodies)]
        # then the forgeries did not use up its allowance; its third message is over the limit
        assert {a.status_code for a in forged_answers} == {401}
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[2].json()["code"] == "throttled"
        assert int(answers[2]["Retry-After"]) >= 1
        assert InboundBlockchainEvent.objects.count() == 2


def _post_from(client: Client, body: bytes, headers: dict[str, str], address: str, **extra: str) -> Any:
    """A request as from `address` (`extra`: more WSGI environ values, e.g. HTTP_X_FORWARDED_FOR)."""
    environ: dict[str, Any] = {"REMOTE_ADDR": address, **extra}
    return client.post(URL, data=body, content_type="application/json", headers=headers, **environ)
