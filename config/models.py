"""Project-wide tables that belong to no single app.

- `IdempotencyKey`: one row per (user, `Idempotency-Key` header) of a money- or state-moving API
  POST, holding the fingerprint of the request and the response it got, so that a retry is
  answered with that response instead of acting twice (see `config/idempotency.py`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """A key a client sent, the request it came with, and the 2xx response that request got.

    The row is inserted and its response stored in the same transaction as the effect of the
    request, so a committed row always has a response. Failed requests leave no row.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # sha256 hex of method, path and canonical JSON body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.TextField()
    response_status = models.PositiveSmallIntegerField(null=True)
    # The JSON exactly as it was rendered (text, not jsonb, which would reorder keys): replayed as is.
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "idempotency_keys"
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_at")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"
