"""HTTP security as a browser sees it, on gunicorn: headers, cookie flags; and `check --deploy` in production."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.authtoken.models import Token

from config.localservices import free_port
from tests.fixtures.waiting import wait_for

BASE_DIR = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
HTTPS = {"X-Forwarded-Proto": "https"}  # as the TLS proxy in front says (SECURE_PROXY_SSL_HEADER)


def _production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(overrides)
    return env


def _database_url() -> str:
    """The test database (gunicorn must see what the test wrote)."""
    db = connection.settings_dict
    credentials = f"{quote(db['USER'])}:{quote(db['PASSWORD'])}@" if db["PASSWORD"] else f"{quote(db['USER'])}@"
    return f"postgres://{credentials}{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def gunicorn(transactional_db: None) -> Iterator[str]:
    """The web process as the Procfile runs it, with DEBUG off, on a free port of this machine."""
    port = free_port()
    env = _production_env(DATABASE_URL=_database_url(), REDIS_URL=settings.REDIS_URL)
    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():  # the release step's collectstatic
        subprocess.run(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=BASE_DIR, env=env, check=True, timeout=300
        )
    process = subprocess.Popen(
        [str(BIN_DIR / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(url + "/healthz", timeout=10).status_code == 200
        except requests.RequestException:
            assert process.poll() is None, process.stderr.read().decode()[-3000:] if process.stderr else ""
            return False

    try:
        wait_for(answers, timeout=60)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def _cookies(response: requests.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name, as sent (flags included)."""
    headers = response.raw.headers.getlist("Set-Cookie")
    return {header.split("=", 1)[0]: header for header in headers}


def _flags(set_cookie: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in set_cookie.split(";")[1:]}


def _assert_security_headers(response: requests.Response, *, https: bool) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
    assert response.headers["X-Frame-Options"] == "DENY", response.url
    assert response.headers["Referrer-Policy"] == "same-origin", response.url
    if https:
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains", response.url
    else:
        assert "Strict-Transport-Security" not in response.headers, response.url  # meaningless over plain HTTP


def test_headers_and_cookies_of_the_running_server(gunicorn: str) -> None:
    # given an operator
    User.objects.create_user("guard", password="guard-pass-123456", is_staff=True)
    token = Token.objects.create(user=User.objects.get(username="guard")).key
    origin = {"Origin": gunicorn.replace("http://", "https://")}
    # when a browser opens the admin login over HTTPS
    page = requests.get(gunicorn + "/admin/login/", headers=HTTPS, timeout=30)
    # then the page carries every header, and the CSRF cookie is Secure, HttpOnly and SameSite
    assert page.status_code == 200
    _assert_security_headers(page, https=True)
    assert page.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    csrf_cookie = _cookies(page)["csrftoken"]
    assert {"secure", "httponly", "samesite"} <= _flags(csrf_cookie), csrf_cookie
    assert "samesite=lax" in csrf_cookie.lower()
    # when it logs in
    csrf = csrf_cookie.split(";", 1)[0].split("=", 1)[1]
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert form_token is not None
    login = requests.post(
        gunicorn + "/admin/login/?next=/admin/",
        data={"username": "guard", "password": "guard-pass-123456", "csrfmiddlewaretoken": form_token.group(1)},
        headers=HTTPS | origin | {"Cookie": f"csrftoken={csrf}"},
        allow_redirects=False,
        timeout=30,
    )
    # then the session cookie is Secure and HttpOnly too
    assert login.status_code == 302, login.text[-2000:]
    session_cookie = _cookies(login)["sessionid"]
    assert {"secure", "httponly", "samesite"} <= _flags(session_cookie), session_cookie
    # and the API, the inbound webhook and the health probe carry the same headers
    api = requests.get(gunicorn + "/api/v1/", headers=HTTPS | {"Authorization": f"Token {token}"}, timeout=30)
    assert api.status_code == 200
    _assert_security_headers(api, https=True)
    inbound = requests.post(gunicorn + "/blockchain/webhook", data=b"{}", headers=HTTPS, timeout=30)
    assert inbound.status_code == 401
    _assert_security_headers(inbound, https=True)
    _assert_security_headers(requests.get(gunicorn + "/healthz", timeout=30), https=False)


def test_check_deploy_passes_with_production_settings() -> None:
    # given the environment the README asks for in production (HTTPS redirect on, real hosts and key)
    env = _production_env(ALLOWED_HOSTS="payouts.example.com", SECURE_SSL_REDIRECT="true")
    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then Django finds nothing to warn about
    assert result.returncode == 0, result.stderr[-4000:]
    assert "System check identified no issues" in result.stdout, result.stdout


def test_hsts_is_on_unless_debug() -> None:
    def hsts_seconds(debug: str) -> str:
        code = "import django; django.setup(); from django.conf import settings; print(settings.SECURE_HSTS_SECONDS)"
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=BASE_DIR,
            env=_production_env(DEBUG=debug),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()

    assert (hsts_seconds("false"), hsts_seconds("true")) == ("31536000", "0")
