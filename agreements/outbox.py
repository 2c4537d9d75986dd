"""The webhook outbox, both directions: a row is the truth, a task makes its tries.

Outbound deliveries (`WebhookDelivery`) and inbound events (`InboundBlockchainEvent`) keep the same
books, so each kind of row declares an `Outbox` and its service uses it for:

- enqueue: the row's task is published after commit by `config.enqueue`; a broker that cannot take
  it costs milliseconds and a log line, never the transaction;
- sweep: rows still to do whose due time is WEBHOOK_SWEEP_AFTER_SECONDS past (the broker lost their
  message) are enqueued again;
- retry: a failed try is counted under the row lock and the next one is scheduled with exponential
  backoff and jitter, until WEBHOOK_MAX_RETRIES retries are spent and the row ends FAILED, owing its
  alert (`alert_due_at`, set in the same transaction);
- alert: one Discord alert for a row that gave up (never raising). The worker that failed the row
  sends it after commit; a sender first claims it (conditional UPDATE moving `alert_due_at`
  ALERT_HOLD ahead) and clears it once handled, so the alert of a worker that died in between is
  still owed, and the sweeper sends it, once;
- a fresh round: an operator's resend or reprocess puts a finished row back, its count at zero.

What one try is (a signed POST, applying an event) stays with the row's service.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar, cast
from uuid import UUID

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from config.alerts import AlertField, send_alert
from config.enqueue import publish, publish_on_commit
from config.states import StateMachine

logger = logging.getLogger(__name__)

# How long a sender holds an owed alert before another may send it: longer than one send takes
# (config.alerts: a 5 s post, a wait of up to 5 s on Discord's 429, a second post).
ALERT_HOLD = timedelta(seconds=60)


class OutboxRow(Protocol):
    """The fields an outbox row keeps its books in."""

    id: UUID
    agreement_id: UUID
    status: str
    attempt_count: int
    next_attempt_at: datetime
    last_error: str
    alert_due_at: datetime | None


RowT = TypeVar("RowT", bound=models.Model)


@dataclass(frozen=True)
class FailedTry:
    """What a counted failure decided: the next try in `retry_in` seconds, or `final` (FAILED now)."""

    retry_in: float | None
    final: bool


def backoff_seconds(retry_number: int) -> float:
    """Exponential backoff with jitter: between half and all of base x 2^(n-1), capped."""
    ceiling = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, retry_number - 1)
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security
    return float(min(delay, settings.WEBHOOK_RETRY_MAX_SECONDS))


@dataclass(frozen=True)
class Outbox(Generic[RowT]):
    """The bookkeeping of one kind of outbox row (see the module docstring)."""

    model: type[RowT]
    moves: StateMachine  # the model's MOVES: a failure and a fresh round are moves it must allow
    task: str  # the task making one try; its one argument is the row id as a string
    noun: str  # names the row in log lines: "could not send <noun> alert <noun>_id=…"
    pending: str  # the status of a row still to be tried
    failed: str  # the status of a row that gave up
    alert_title: str
    alert_remedy: str  # what an operator does once the cause is fixed
    alert_row_label: str  # the alert field that carries the row id
    alert_describe: Callable[[RowT], tuple[str, str]]  # a row -> (alert cause, event it is about)
    leased: bool = False  # rows carry `locked_until`: a worker's claim while it tries
    finished_at: str | None = None  # stamped when the row gives up, cleared by a fresh round

    # --- Enqueueing -------------------------------------------------------------------------------
    def enqueue(self, row_id: UUID, *, countdown: float | None = None) -> bool:
        """Send the row's task to the broker; False (logged) if the broker is unreachable.

        Never raises and never retries: the row is the truth and the sweeper re-enqueues it.
        """
        return publish(self.task, str(row_id), countdown=countdown)

    def enqueue_on_commit(self, row_id: UUID) -> None:
        """Enqueue the row's task once the caller's transaction commits (nothing if it rolls back)."""
        publish_on_commit(self.task, str(row_id))

    def sweep(self, *, limit: int = 1000) -> int:
        """Re-enqueue rows still to do and overdue by WEBHOOK_SWEEP_AFTER_SECONDS (lost by the broker)."""
        now = timezone.now()
        cutoff = now - timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
        rows = self.model._default_manager.filter(status=self.pending, next_attempt_at__lte=cutoff)
        if self.leased:
            rows = rows.filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        overdue = list(rows.order_by("next_attempt_at").values_list("id", flat=True)[:limit])
        swept = 0
        for row_id in overdue:
            # Restart the clock so the next sweep does not enqueue it again while it waits in the queue.
            touched = self.model._default_manager.filter(
                id=row_id, status=self.pending, next_attempt_at__lte=cutoff
            ).update(next_attempt_at=now)
            if touched and self.enqueue(row_id):
                swept += 1
        if overdue:
            logger.info("%s swept count=%s of=%s", self.model._meta.verbose_name_plural, swept, len(overdue))
        return swept

    def send_owed_alerts(self, *, limit: int = 100) -> int:
        """Send the alerts still owed by rows that gave up (their worker died before sending them, or
        while it did, and its hold expired); each is claimed first, so sent once. How many were sent."""
        owed = list(
            self.model._default_manager.filter(status=self.failed, alert_due_at__lte=timezone.now())
            .order_by("alert_due_at")
            .values_list("id", flat=True)[:limit]
        )
        sent = sum(self.alert_failed(row_id) for row_id in owed)
        if owed:
            logger.info("%s owed alerts sent count=%s of=%s", self.model._meta.verbose_name, sent, len(owed))
        return sent

    # --- Retries ----------------------------------------------------------------------------------
    def count_failure(
        self,
        row: OutboxRow,
        *,
        error: str,
        now: datetime,
        give_up: bool = False,
        wait_at_least: float | None = None,
    ) -> FailedTry:
        """Under the row lock: count one failed try, then schedule the next or end the row FAILED,
        owing its alert.

        `give_up` ends it now whatever is left; `wait_at_least` (a `Retry-After`) lengthens the
        backoff up to WEBHOOK_RETRY_MAX_SECONDS. The caller saves the row's `failure_fields`.
        """
        row.attempt_count += 1
        row.last_error = error
        if give_up or row.attempt_count > settings.WEBHOOK_MAX_RETRIES:
            self.moves.check(row.status, self.failed)
            row.status = self.failed
            row.alert_due_at = now
            if self.finished_at:
                setattr(row, self.finished_at, now)
            return FailedTry(None, final=True)
        retry_in = backoff_seconds(row.attempt_count)
        if wait_at_least is not None:
            retry_in = min(max(retry_in, wait_at_least), settings.WEBHOOK_RETRY_MAX_SECONDS)
        row.next_attempt_at = now + timedelta(seconds=retry_in)
        return FailedTry(retry_in, final=False)

    @property
    def failure_fields(self) -> list[str]:
        """The columns `count_failure` may set: what its caller saves."""
        fields = ["attempt_count", "last_error", "status", "next_attempt_at", "alert_due_at"]
        return [*fields, self.finished_at] if self.finished_at else fields

    def follow_up(self, row_id: UUID, failure: FailedTry) -> None:
        """After a failed try is recorded (outside its transaction): enqueue the next try, or alert."""
        if failure.retry_in is not None:
            self.enqueue(row_id, countdown=failure.retry_in)
        if failure.final:
            self.alert_failed(row_id)

    def alert_failed(self, row_id: UUID) -> bool:
        """Send the alert a row that gave up owes, if it still owes it and nobody else is sending it:
        one Discord alert, rate-limited per cause; never raises. True if Discord accepted it.

        The alert is claimed first (its due time moved ALERT_HOLD ahead, by conditional UPDATE) and
        cleared once handled: sent, suppressed by the rate limit, or refused by Discord (each logged).
        A sender that dies holding it leaves it owed, for the sweeper once the hold expires.
        """
        try:
            now = timezone.now()
            held_until = now + ALERT_HOLD
            rows = self.model._default_manager.filter(id=row_id)
            if not rows.filter(status=self.failed, alert_due_at__lte=now).update(alert_due_at=held_until):
                return False  # not owed: already handled, being sent by another, or a fresh round began
            row = rows.get()
            cause, event = self.alert_describe(row)
            books = cast("OutboxRow", row)  # every outbox model has these fields
            sent = send_alert(
                cause=cause,
                title=self.alert_title,
                description=f"Gave up after {books.attempt_count} tries. {self.alert_remedy}",
                fields=[
                    AlertField("Agreement", str(books.agreement_id)),
                    AlertField("Event", event),
                    AlertField(self.alert_row_label, str(books.id)),
                    AlertField("Last error", books.last_error or "-"),
                ],
            )
            rows.filter(alert_due_at=held_until).update(alert_due_at=None)  # only our own hold
        except Exception:  # noqa: BLE001 - an alert never fails the task; still owed, the sweeper retries
            logger.warning("could not send %s alert %s_id=%s", self.noun, self.noun, row_id)
            return False
        return sent

    # --- A fresh round ----------------------------------------------------------------------------
    def fresh_round(self, now: datetime) -> dict[str, Any]:
        """The field values that give a finished row a new round of tries."""
        # A row given a fresh round no longer owes the alert of the round that gave up.
        values: dict[str, Any] = {
            "status": self.pending,
            "attempt_count": 0,
            "next_attempt_at": now,
            "alert_due_at": None,
        }
        if self.leased:
            values["locked_until"] = None
        if self.finished_at:
            values[self.finished_at] = None
        return values

    def reopen(self, row: RowT) -> None:
        """Under the row lock: start a fresh round of tries, enqueued after commit."""
        values = self.fresh_round(timezone.now())
        self.moves.move(row, values.pop("status"), **values)
        self.enqueue_on_commit(row.pk)

    def reopen_failed(self, row_ids: Iterable[UUID]) -> None:
        """Start a fresh round for each listed row still FAILED, each enqueued after commit."""
        row_ids = list(row_ids)
        values = self.fresh_round(timezone.now())
        self.moves.claim(
            self.model._default_manager.filter(id__in=row_ids), values.pop("status"), sources=[self.failed], **values
        )
        for row_id in row_ids:
            self.enqueue_on_commit(row_id)
