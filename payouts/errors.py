"""Domain errors raised by payouts services; the API maps them to HTTP statuses."""

from __future__ import annotations


class PayoutsError(Exception):
    """Base class: a message a person can act on."""


class NotFound(PayoutsError):
    """The asset or distribution does not exist (404)."""


class Conflict(PayoutsError):
    """The current state forbids the action: paused asset, wrong status, duplicate (409)."""


class InvalidInput(PayoutsError):
    """Input that passed the serializer but is wrong for this asset or the chain (400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
