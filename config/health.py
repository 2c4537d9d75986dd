"""Liveness (/healthz) and readiness (/readyz) endpoints.

Readiness runs every check in settings.READINESS_CHECKS; each returns None when healthy or a short
reason (never a URL or a credential) when not. Any failure answers 503 naming the failing part.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET

from config.locks import redis_client

logger = logging.getLogger(__name__)

Check = Callable[[], str | None]


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return None


def check_redis() -> str | None:
    try:
        redis_client().ping()
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return None


def check_chain_rpc() -> str | None:
    """The chain RPC answers eth_blockNumber (skipped when no CHAIN_RPC_URL is configured)."""
    if not settings.CHAIN_RPC_URL:
        return None
    import requests

    try:
        response = requests.post(
            settings.CHAIN_RPC_URL,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
            timeout=3,
        )
        response.raise_for_status()
        if "result" not in response.json():
            return "bad answer"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return None


def _check_name(path: str) -> str:
    return path.rsplit(".", 1)[-1].removeprefix("check_")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for path in settings.READINESS_CHECKS:
        check: Check = import_string(path)
        failure = check()
        results[_check_name(path)] = failure or "ok"
    failing = [name for name, result in results.items() if result != "ok"]
    if failing:
        logger.warning("not ready failing=%s", ",".join(failing))
        return JsonResponse({"status": "unavailable", "failing": failing, "checks": results}, status=503)
    return JsonResponse({"status": "ok", "checks": results})
