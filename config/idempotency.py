"""`Idempotency-Key` for the API's money- and state-moving POSTs: a client's retry never acts twice.

Decorate a DRF view's `post` with `@idempotent`. A request without the header runs as before. With it:

1. The key must be 1 to 255 printable ASCII characters (else 400, nothing done).
2. One transaction wraps the rest. The (user, key) row is inserted, or found. A concurrent request
   with the same key blocks on the unique index until the first one commits or rolls back; if that
   takes longer than PostgreSQL's `lock_timeout`, it gets 409 `idempotency_key_in_use`.
3. Found: the same request (method, path, canonical JSON body) gets the stored status and body
   again, with `Idempotent-Replayed: true`; any other request gets 422 `idempotency_key_reused`.
4. Inserted: the view runs. A 2xx response is stored on the row and committed together with the
   view's effects (the services' own `atomic()` blocks become savepoints and their `on_commit`
   callbacks fire at this commit), so a crash leaves neither. Any other response, or an exception,
   rolls everything back: the key stays free and the error is answered exactly as before.

The decorator also documents the header and the 409 / 422 answers in the OpenAPI schema, on top of
whatever `@extend_schema` says about the same method. `idempotency_keys_purge` deletes keys older
than `IDEMPOTENCY_KEY_TTL_HOURS` (periodic task `config.tasks.purge_idempotency_keys_task`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.db import OperationalError, transaction
from django.http import HttpResponseBase, QueryDict
from django.utils import timezone
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from config.api import ERROR_BODY, ConflictError
from config.models import IdempotencyKey

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# PostgreSQL's SQLSTATE for "lock_timeout expired while waiting for a lock".
LOCK_NOT_AVAILABLE = "55P03"
PURGE_CHUNK = 5_000

ViewPost = TypeVar("ViewPost", bound=Callable[..., HttpResponseBase])


class IdempotencyKeyReused(exceptions.APIException):
    """The key was used before for another request: acting or replaying would both be wrong."""

    status_code = 422
    default_detail = (
        "This Idempotency-Key was already used for a different request (another path or body). "
        "Send a new key for a new request, or repeat the original request unchanged to get its response."
    )
    default_code = "idempotency_key_reused"


class IdempotencyKeyInUse(ConflictError):
    """Another request with the key held it longer than the lock timeout."""

    default_detail = "A request with this Idempotency-Key is still running; retry shortly."
    default_code = "idempotency_key_in_use"


# --- the request ----------------------------------------------------------------------------------
def _header_key(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        raise exceptions.ValidationError(
            {HEADER: [f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters; a random UUID is a good key."]}
        )
    return key


def _plain(data: Any) -> Any:
    if isinstance(data, QueryDict):  # a form body: keep repeated fields
        return {name: data.getlist(name) for name in data}
    return data


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """sha256 hex of the method, the path and the body as canonical JSON (keys sorted, compact)."""
    canonical = json.dumps(_plain(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


# --- the key row ----------------------------------------------------------------------------------
def _claim(*, user: User, key: str, method: str, path: str, fingerprint: str) -> tuple[IdempotencyKey, bool]:
    """Insert the (user, key) row, or get the committed one. Call it inside the request's transaction.

    While another transaction holds an uncommitted row with this key, the insert waits on the
    unique index; once that one commits the insert fails and the committed row is read instead,
    and once it rolls back the insert goes through.
    """
    try:
        return IdempotencyKey.objects.get_or_create(
            user=user, key=key, defaults={"fingerprint": fingerprint, "method": method, "path": path}
        )
    except OperationalError as exc:
        cause = exc.__cause__
        if getattr(cause, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise IdempotencyKeyInUse() from exc
        raise


def _replay(record: IdempotencyKey, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"This Idempotency-Key was already used for another request ({record.method} {record.path}, "
            "or the same path with another body). Send a new key for a new request, or repeat that request "
            "unchanged to get its response."
        )
    if record.response_status is None:  # not reachable: a row is only committed with its response
        raise IdempotencyKeyInUse()
    logger.info("idempotent replay idempotency_key_id=%s status=%s", record.pk, record.response_status)
    data = json.loads(record.response_body) if record.response_body else None
    return Response(data, status=record.response_status, headers={REPLAYED_HEADER: "true"})


def _rendered(response: HttpResponseBase) -> str:
    """The body as JSON text; rendering `data` again later gives the same bytes."""
    if isinstance(response, Response):
        return JSONRenderer().render(response.data).decode()
    return bytes(getattr(response, "content", b"")).decode()


# --- the decorator --------------------------------------------------------------------------------
def idempotent(post: ViewPost) -> ViewPost:
    """Make a DRF view's `post` honour `Idempotency-Key` (see the module docstring) and document it."""

    @functools.wraps(post)
    def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        key = _header_key(request)
        user = request.user
        if key is None or user is None or not user.is_authenticated:
            return post(view, request, *args, **kwargs)
        method = request.method or "POST"
        fingerprint = request_fingerprint(method=method, path=request.path, data=request.data)
        with transaction.atomic():
            record, created = _claim(user=user, key=key, method=method, path=request.path, fingerprint=fingerprint)
            if not created:
                return _replay(record, fingerprint)
            response = post(view, request, *args, **kwargs)
            if not 200 <= response.status_code < 300:
                # Release the key: a refused request changed nothing and may be sent again as is.
                transaction.set_rollback(True)
                return response
            record.response_status = response.status_code
            record.response_body = _rendered(response)
            record.save(update_fields=["response_status", "response_body"])
            return response

    _document(post, wrapper)
    return cast(ViewPost, wrapper)


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Optional; 1 to 255 printable ASCII characters, e.g. a random UUID (else 400). Retrying with the "
        "same key and the same request returns the original 2xx response (status and body) with "
        f"`{REPLAYED_HEADER}: true` instead of acting again. Keys are per user and kept at least 24 hours; "
        "only 2xx responses are stored, so a refused request can be sent again with its key."
    ),
)
ERROR_RESPONSES = {
    "409": OpenApiResponse(
        ERROR_BODY,
        description="Conflict. `idempotency_key_in_use`: a request with this key is still running; retry shortly.",
    ),
    "422": OpenApiResponse(
        ERROR_BODY,
        description="`idempotency_key_reused`: the key was already used for another path or body.",
    ),
}


def _document(post: Callable[..., Any], wrapper: Callable[..., Any]) -> None:
    """Attach a schema class that adds the header and the 409 / 422 answers to the method's schema.

    It extends the schema `@extend_schema` left on the method (or the default), so the request and
    response bodies declared there stay; an `@extend_schema` applied on top extends this one.
    """
    base = getattr(post, "kwargs", {}).get("schema") or api_settings.DEFAULT_SCHEMA_CLASS

    class IdempotentSchema(base):  # type: ignore[misc,valid-type]
        def get_override_parameters(self) -> list[Any]:
            return [*super().get_override_parameters(), IDEMPOTENCY_KEY_PARAMETER]

        def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
            bodies: dict[str, Any] = super()._get_response_bodies(direction)
            for code, answer in ERROR_RESPONSES.items():
                bodies.setdefault(code, self._get_response_for_code(answer, code, direction=direction))
            return bodies

    assert issubclass(IdempotentSchema, AutoSchema)  # noqa: S101 - drf-spectacular's schema is required
    # A copy: functools.wraps shares the wrapped function's dict, which other views may also use.
    wrapper.kwargs = {**getattr(post, "kwargs", {}), "schema": IdempotentSchema}  # type: ignore[attr-defined]


# --- retention ------------------------------------------------------------------------------------
def idempotency_keys_purge(*, now: datetime | None = None) -> int:
    """Delete keys older than IDEMPOTENCY_KEY_TTL_HOURS, in chunks (short transactions); the count."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted = 0
    while True:
        ids = list(IdempotencyKey.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:PURGE_CHUNK])
        if not ids:
            break
        deleted += IdempotencyKey.objects.filter(pk__in=ids).delete()[0]
    if deleted:
        logger.info("idempotency keys purged count=%s cutoff=%s", deleted, cutoff.isoformat())
    return deleted
