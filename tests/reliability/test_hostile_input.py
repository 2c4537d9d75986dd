"""Scenario 6: hostile input against the running deployment (gunicorn, workers).

Every API route (from the served schema) and every admin page refuses anonymous and non-staff
users; the inbound webhook refuses forged, unsigned, expired, replayed-with-another-body, oversized,
deeply nested and non-JSON requests with a 4xx and stores nothing; and the logs of every process
hold none of the stack's secrets (checked here, and for every stack of the suite by test_zz_logs)."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from agreements.signing import generate_key_pair
from tests.agreements.factories import agreement_body
from tests.agreements.servers import sign_documented
from tests.reliability.stack import Stack, running_stack, summary, wait_until

pytestmark = pytest.mark.reliability

MAKE_USER = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
user = User.objects.create_user("outsider", password="{password}", is_staff=False)
print(Token.objects.create(user=user).key)
"""
ADMIN_URLS = """
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
for model in admin.site._registry:
    meta = model._meta
    for view, args in (("changelist", []), ("add", []), ("change", ["1"]), ("delete", ["1"]), ("history", ["1"])):
        try:
            print(reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args))
        except NoReverseMatch:
            pass
print(reverse("admin:index"))
"""


def api_operations(stack: Stack) -> list[tuple[str, str]]:
    """(method, path) of every operation the served schema lists, path parameters filled in."""
    schema = requests.get(stack.web_url + "/api/schema/", params={"format": "json"}, timeout=30).json()
    operations = []
    for path, item in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        operations += [
            (method.upper(), concrete) for method in item if method in {"get", "post", "put", "patch", "delete"}
        ]
    return operations


def event_body(agreement_id: str, **overrides: Any) -> bytes:
    data = {
        "agreement_id": agreement_id,
        "tx_hash": "0x" + secrets.token_hex(32),
        "tx_block_number": 123456,
        "tx_block_timestamp": 1_712_345_678,
        "contract_address": "0x" + "ab" * 20,
        "data": {},
    }
    return json.dumps({"type": "CREATE", "data": data | overrides}).encode()


def test_hostile_requests_are_refused_and_no_secret_reaches_a_log(tmp_path: Path) -> None:
    with running_stack(tmp_path, processes=("web", "worker")) as stack:
        outsider_password = secrets.token_urlsafe(12)
        outsider = stack.manage("shell", "-c", MAKE_USER.format(password=outsider_password)).split()[-1]
        stack.secrets += [outsider, outsider_password]
        # --- the API: anonymous and non-staff callers are refused on every operation
        operations = api_operations(stack)
        assert len(operations) > 30, operations
        answered: dict[str, list[int]] = {"anonymous": [], "non-staff": []}
        for method, path in operations:
            anonymous = requests.request(method, stack.web_url + path, json={}, timeout=30)
            non_staff = stack.api(method, path, {}, token=outsider)
            answered["anonymous"].append(anonymous.status_code)
            answered["non-staff"].append(non_staff.status_code)
            assert anonymous.status_code == 401, (method, path, anonymous.status_code, anonymous.text[:200])
            assert non_staff.status_code == 403, (method, path, non_staff.status_code, non_staff.text[:200])
        # --- the admin: every page sends anonymous and non-staff users to the login page
        pages = [line for line in stack.manage("shell", "-c", ADMIN_URLS).split() if line.startswith("/")]
        browser = requests.Session()
        login_page = browser.get(stack.web_url + "/admin/login/", timeout=30)
        csrf = browser.cookies["csrftoken"]
        refused_login = browser.post(
            stack.web_url + "/admin/login/",
            data={"username": "outsider", "password": outsider_password, "csrfmiddlewaretoken": csrf},
            headers={"Referer": login_page.url},
            timeout=30,
        )
        assert refused_login.status_code == 200
        assert "staff account" in refused_login.text
        for page in pages:
            for who, client in (("anonymous", requests), ("non-staff", browser)):
                response = client.get(stack.web_url + page, allow_redirects=False, timeout=30)
                assert response.status_code == 302, (who, page, response.status_code)
                assert response.headers["Location"].startswith("/admin/login/"), (who, page, response.headers)
        # --- the inbound webhook: hostile requests get a 4xx and store nothing
        agreement = stack.api("POST", "/api/v1/agreements/", agreement_body())
        assert agreement.status_code == 201, agreement.text
        agreement_id = agreement.json()["id"]
        forger_private, _ = generate_key_pair(2048)
        original = event_body(agreement_id)
        original_id = f"msg_{uuid.uuid4().hex}"
        first = post_inbound(stack, original, sign(stack, original, webhook_id=original_id))
        assert first.status_code == 202, first.text
        stored_before = wait_until(lambda: count_stored(stack) == 2 and 2, timeout=60, what="the event to be logged")
        nested = b'{"type": "CREATE", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        hostile: dict[str, tuple[bytes, dict[str, str]]] = {
            "forged": (body := event_body(agreement_id), sign(stack, body, private_pem=forger_private)),
            "signed with our own key": (
                body := event_body(agreement_id),
                sign(stack, body, private_pem=stack.private_pem),
            ),
            "unsigned": (event_body(agreement_id), {}),
            "expired": (body := event_body(agreement_id), sign(stack, body, timestamp=int(time.time()) - 3600)),
            "from the future": (body := event_body(agreement_id), sign(stack, body, timestamp=int(time.time()) + 3600)),
            "replayed with another body": (body := event_body(agreement_id), sign(stack, body, webhook_id=original_id)),
            "oversized": (body := event_body(agreement_id, pad="x" * 300_000), sign(stack, body)),
            "deeply nested": (nested, sign(stack, nested)),
            "not JSON": (b"<xml>hello</xml>", sign(stack, b"<xml>hello</xml>")),
            "not UTF-8": (b"\xff\xfe\xfa", sign(stack, b"\xff\xfe\xfa")),
            "unknown agreement": (body := event_body(str(uuid.uuid4())), sign(stack, body)),
        }
        refused = {}
        for name, (body, headers) in hostile.items():
            response = post_inbound(stack, body, headers)
            refused[name] = response.status_code
            assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
            assert "detail" in response.json(), (name, response.text[:300])
        assert count_stored(stack) == stored_before, "a refused request stored something"
        leaks = stack.secret_leaks()
        assert not leaks, f"secrets in the logs: {leaks}"
        summary(
            "hostile_input",
            api_operations=len(operations),
            admin_pages=len(pages),
            anonymous_refused=len(answered["anonymous"]),
            non_staff_refused=len(answered["non-staff"]),
            inbound_refused=len(refused),
            stored_by_refused=count_stored(stack) - stored_before,
            secrets_checked=len(stack.secrets),
            leaks=len(leaks),
        )


def sign(stack: Stack, body: bytes, **overrides: Any) -> dict[str, str]:
    headers = sign_documented(
        body=body,
        private_pem=overrides.pop("private_pem", stack.service_private_pem),
        application_id=stack.application_id,
        webhook_id=overrides.pop("webhook_id", f"msg_{uuid.uuid4().hex}"),
        timestamp=overrides.pop("timestamp", None),
    )
    stack.secrets.append(headers["webhook-signature"].split(",", 1)[1])
    return headers


def post_inbound(stack: Stack, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        stack.web_url + "/blockchain/webhook",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )


def count_stored(stack: Stack) -> int:
    (events,), (logs,) = (
        stack.sql("SELECT count(*) FROM agreement_inbound_blockchain_events")[0],
        stack.sql("SELECT count(*) FROM agreement_blockchain_logs")[0],
    )
    return int(events) + int(logs)
