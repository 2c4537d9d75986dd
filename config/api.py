"""API conventions shared by every app: the error response, built once here for every view.

Error body, whatever the status:
    {"code": "<machine-readable>", "detail": "<what a person can act on>", "fields": {...}}
`fields` is present on validation errors only. Services and selectors raise `config.errors`
(`NotFound` 404, `Conflict` 409, `InvalidInput` 400 naming its field); a `ChainError` is a 503
that names no URL; unexpected errors are logged and masked as 500. Views translate nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from chain.errors import ChainError
from config.errors import DomainError, InvalidInput

logger = logging.getLogger(__name__)


# The error body, for the API schema (responses are built by `exception_handler`).
ERROR_BODY = inline_serializer(
    name="Error",
    fields={
        "code": serializers.CharField(help_text="Machine-readable error code."),
        "detail": serializers.CharField(help_text="What happened and what to do, for a person."),
        "fields": serializers.DictField(required=False, help_text="Per-field messages; on validation errors only."),
    },
)


class ConflictError(exceptions.APIException):
    """An HTTP-level conflict (a busy idempotency key); services raise `config.errors.Conflict`."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class ServiceUnavailableError(exceptions.APIException):
    """A service the request needs (the chain RPC, say) did not answer; nothing was changed."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A service this request needs is unavailable; nothing was changed. Try again shortly."
    default_code = "unavailable"


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        message = _first_message(value)
        return message if key == "non_field_errors" else f"{key}: {message}"
    return str(detail)


class _DomainRefusal(exceptions.APIException):
    """A `DomainError` carried through DRF's handler with its own status and code."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(str(error) or type(error).__doc__ or error.code, error.code)
        self.status_code = error.http_status
        self.default_code = error.code


def _as_api_exception(exc: Exception, context: dict[str, Any]) -> Exception:
    """The one mapping from domain, chain and Django errors to DRF's HTTP exceptions."""
    if isinstance(exc, InvalidInput):
        return exceptions.ValidationError({exc.field: [str(exc)]})
    if isinstance(exc, DomainError):
        return _DomainRefusal(exc)
    if isinstance(exc, ChainError):
        # the RPC URL may carry credentials: the client gets no detail, the log gets the error type
        view = context.get("view")
        logger.warning(
            "chain unavailable during an API call view=%s error_type=%s",
            type(view).__name__ if view else None,
            type(exc).__name__,
        )
        return ServiceUnavailableError("the chain RPC did not answer; nothing was changed: try again shortly")
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _as_api_exception(exc, context)
    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.exception("unhandled API error view=%s", type(view).__name__ if view else None)
        return Response(
            {"code": "server_error", "detail": "Internal server error."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    assert isinstance(exc, exceptions.APIException)  # noqa: S101 - narrowed by drf's handler
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {
            "code": "invalid",
            "detail": f"Invalid input: {_first_message(fields)}",
            "fields": fields,
        }
    else:
        codes = exc.get_codes()
        response.data = {
            "code": codes if isinstance(codes, str) else exc.default_code,
            "detail": str(exc.detail),
        }
    return response
