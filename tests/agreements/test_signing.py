"""The signing scheme's building blocks, retry timing, amounts, and the key generation command."""

from __future__ import annotations

import io
import re
import time

import pytest
from django.core import checks
from django.core.management import call_command
from pytest_django.fixtures import Settings

from agreements import signing
from agreements.checks import check_webhook_keys
from agreements.outbox import backoff_seconds
from agreements.payloads import from_units, to_units
from agreements.services.outbound import parse_retry_after
from tests.agreements.conftest import Application, Service
from tests.agreements.servers import sign_documented, verify_documented


class _Headers(dict[str, str]):
    """Case-insensitive lookups, like Django's request.headers."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return next((v for k, v in self.items() if k.lower() == key.lower()), default)


def test_our_signatures_verify_with_the_documented_scheme(application: Application) -> None:
    # when
    headers = signing.signature_headers(
        webhook_id="msg_1", body=b'{"a":1}', application_id=application.id, private_keys_pem=application.private_pem
    )
    # then an independent verifier accepts them, and not for another body
    assert verify_documented(headers, b'{"a":1}', application.public_pem, application.id)
    assert not verify_documented(headers, b'{"a":2}', application.public_pem, application.id)


def test_rotation_signs_with_every_key_and_verifies_with_any(
    application: Application, other_application: Application
) -> None:
    # given two private keys configured during a rotation
    both = application.private_pem + "\n" + other_application.private_pem
    # when
    headers = signing.signature_headers(
        webhook_id="msg_2", body=b"{}", application_id=application.id, private_keys_pem=both
    )
    # then two entries, each verifiable by its own public key
    assert len(headers["webhook-signature"].split(" ")) == 2
    for public in (application.public_pem, other_application.public_pem):
        message = signing.verify(
            headers=_Headers(headers), body=b"{}", application_id=application.id, public_keys_pem=public
        )
        assert message.webhook_id == "msg_2"


def test_verify_accepts_documented_signatures_and_refuses_the_rest(
    application: Application, other_application: Application
) -> None:
    def check(headers: dict[str, str], body: bytes = b"{}", now: float | None = None) -> None:
        signing.verify(
            headers=_Headers(headers),
            body=body,
            application_id=application.id,
            public_keys_pem=application.public_pem,
            now=now,
        )

    good = sign_documented(
        body=b"{}", private_pem=application.private_pem, application_id=application.id, webhook_id="m"
    )
    check(good)
    cases = {
        "No valid signature": sign_documented(
            body=b"{}", private_pem=other_application.private_pem, application_id=application.id, webhook_id="m"
        ),
        "Unknown application": good | {"webhook-application-id": other_application.id},
        "Malformed webhook-id": good | {"webhook-id": "a b"},
        "Malformed webhook-timestamp": good | {"webhook-timestamp": "-5"},
        "Missing": {k: v for k, v in good.items() if k != "webhook-signature"},
    }
    for reason, headers in cases.items():
        with pytest.raises(signing.SignatureError, match=reason):
            check(headers)
    with pytest.raises(signing.SignatureError, match="No valid signature"):
        check(good | {"webhook-signature": good["webhook-signature"].replace("v1-rsa-pss", "v1")})
    with pytest.raises(signing.SignatureError, match="seconds off"):
        check(good, now=time.time() + 301)


def test_no_private_key_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="holds no PEM private key"):
        signing.load_private_keys("not a key")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), (None, None), ("", None), ("soon", None), ("Wed, 21 Oct 2099 07:28:00 GMT", "future")],
)
def test_retry_after_parsing(header: str | None, expected: float | str | None) -> None:
    parsed = parse_retry_after(header)
    if expected == "future":
        assert parsed is not None
        assert parsed > 3600
    else:
        assert parsed == expected


def test_backoff_grows_exponentially_with_jitter_and_is_capped(settings: Settings) -> None:
    # given
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_RETRY_MAX_SECONDS = 100
    # when
    samples = {n: [backoff_seconds(n) for _ in range(200)] for n in (1, 2, 3, 5)}
    # then each retry waits between half and all of base x 2^(n-1), never more than the cap
    assert all(5 <= s <= 10 for s in samples[1])
    assert all(10 <= s <= 20 for s in samples[2])
    assert all(20 <= s <= 40 for s in samples[3])
    assert all(s <= 100 for s in samples[5])
    assert len(set(samples[2])) > 100  # jittered


@pytest.mark.parametrize(
    ("base_units", "decimals", "text"), [(123456, 2, "1234.56"), (5, 0, "5"), (1, 18, "0.000000000000000001")]
)
def test_amounts_round_trip_without_floats(base_units: int, decimals: int, text: str) -> None:
    assert to_units(base_units, decimals) == text
    assert from_units(text, decimals) == base_units


def test_generate_command_prints_a_usable_application() -> None:
    # when
    out = io.StringIO()
    call_command("generate_blockchain_application", "--bits", "2048", stdout=out)
    # then the env lines hold an id and a private key; the public key to register is in comments
    printed = out.getvalue().strip().splitlines()
    lines = dict(line.split("=", 1) for line in printed if not line.startswith("#"))
    assert set(lines) == {"BLOCKCHAIN_APPLICATION_ID", "BLOCKCHAIN_APPLICATION_SECRET_KEY"}
    assert re.fullmatch(r"[0-9a-f-]{36}", lines["BLOCKCHAIN_APPLICATION_ID"])
    private = lines["BLOCKCHAIN_APPLICATION_SECRET_KEY"].strip('"')
    public = "\n".join(line.removeprefix("# ") for line in printed if line.startswith("# -----") or _pem_line(line))
    # and the pair matches
    headers = signing.signature_headers(
        webhook_id="m", body=b"x", application_id=lines["BLOCKCHAIN_APPLICATION_ID"], private_keys_pem=private
    )
    signing.verify(
        headers=_Headers(headers), body=b"x", application_id=lines["BLOCKCHAIN_APPLICATION_ID"], public_keys_pem=public
    )


def _pem_line(line: str) -> bool:
    return re.fullmatch(r"# [A-Za-z0-9+/=]{1,64}", line) is not None


def test_public_key_command_prints_the_public_half_of_each_configured_key(
    settings: Settings, application: Application, other_application: Application
) -> None:
    # given our key rotating: two private keys configured, as one-line env values
    settings.BLOCKCHAIN_APPLICATION_SECRET_KEY = (application.private_pem + other_application.private_pem).replace(
        "\n", "\\n"
    )
    # when
    out = io.StringIO()
    call_command("blockchain_public_key", stdout=out)
    # then both public keys, and nothing private
    assert out.getvalue().split() == (application.public_pem + other_application.public_pem).split()
    assert "PRIVATE" not in out.getvalue()


def test_our_own_key_never_verifies_an_inbound_message(application: Application) -> None:
    # given a message signed with our own private key, our public key configured as the sender's by mistake
    headers = sign_documented(
        body=b"{}", private_pem=application.private_pem, application_id=application.id, webhook_id="m"
    )
    # then verification refuses to use our own key
    with pytest.raises(ValueError, match="only our own public key"):
        signing.verify(
            headers=_Headers(headers),
            body=b"{}",
            application_id=application.id,
            public_keys_pem=application.public_pem,
            own_private_keys_pem=application.private_pem,
        )


def test_the_system_check_refuses_our_own_public_key_as_the_service_key(
    settings: Settings, application: Application, service: Service
) -> None:
    # given the right keys, then our own public key configured as the service's by mistake
    assert check_webhook_keys() == []
    settings.BLOCKCHAIN_SERVICE_PUBLIC_KEY = service.public_pem + application.public_pem
    # then `manage.py check` fails, naming the variable
    [message] = check_webhook_keys()
    assert (message.id, message.level) == ("agreements.E001", checks.ERROR)
    assert "BLOCKCHAIN_SERVICE_PUBLIC_KEY" in message.msg


def test_the_system_check_warns_that_the_old_public_key_variable_is_no_longer_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BLOCKCHAIN_APPLICATION_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----...")
    [message] = check_webhook_keys()
    assert message.id == "agreements.W001"
    assert "BLOCKCHAIN_SERVICE_PUBLIC_KEY" in str(message.hint)
