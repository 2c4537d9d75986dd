"""Domain errors shared by every app: services and selectors raise these, never HTTP types.

Each class carries the HTTP status and body `code` the API answers with; `config.api`'s exception
handler is the one place that turns them into a response. The admin shows `str(exc)`; tasks catch
them like any exception. The message is for a person: say what is wrong and what to do.
"""

from __future__ import annotations

import uuid


class DomainError(Exception):
    """Base class: a refusal a person can act on. Changes nothing."""

    http_status = 400
    code = "error"


class NotFound(DomainError):
    """The object does not exist (or its id is malformed)."""

    http_status = 404
    code = "not_found"


class Conflict(DomainError):
    """The current state forbids the action: paused asset, wrong status, duplicate."""

    http_status = 409
    code = "conflict"


class InvalidInput(DomainError):
    """Input that passed the serializer but breaks a business rule; `field` names what to fix."""

    http_status = 400
    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Unavailable(DomainError):
    """A service the request needs (the Hedera Mirror Node, say) did not answer; nothing was changed.

    The message must not name the service's URL (it may carry credentials)."""

    http_status = 503
    code = "unavailable"


def parse_id(raw: object, *, what: str = "object") -> uuid.UUID:
    """A UUID from a URL segment; anything malformed is `NotFound` (a 404, never a 500)."""
    try:
        return uuid.UUID(str(raw))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"{what} not found") from None
