"""Celery tasks of the submission lane (thin: ids in, one service call, retry policy).

`submit_transaction_task` and `cancel_transaction_task` run on the `chain` queue (routes
`chain.tasks.submit_*`, `chain.tasks.cancel_*`); confirming and sweeping run on `default`. All are
idempotent, so they are acknowledged late.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from celery import Task, shared_task
from celery.exceptions import MaxRetriesExceededError

from chain.errors import TransientChainError
from chain.lane import services
from chain.lane.base import CONFIRM_DELAY_SECONDS, SWEEP_STALE_AFTER
from chain.lane.models import ChainTransaction
from config.locks import single_instance

WAITING = (ChainTransaction.Status.SIGNED, ChainTransaction.Status.BROADCAST, ChainTransaction.Status.MINED)


@shared_task(bind=True, name="chain.tasks.submit_transaction_task", acks_late=True, max_retries=8)
def submit_transaction_task(self: Task[Any, Any], transaction_id: str) -> str:
    """Sign, store and broadcast one transaction (ordered per sender by the lane lock)."""
    try:
        return services.transaction_submit(transaction_id=transaction_id)
    except TransientChainError as exc:
        # The sweeper picks the transaction up again if these retries run out.
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries or 0), 30)) from exc


@shared_task(bind=True, name="chain.tasks.confirm_transaction_task", acks_late=True, max_retries=30)
def confirm_transaction_task(self: Task[Any, Any], transaction_id: str) -> str:
    """Record the receipt of a broadcast transaction; retried while it is not mined yet, or not yet
    CHAIN_CONFIRMATIONS deep."""
    try:
        status = services.transaction_confirm(transaction_id=transaction_id)
    except TransientChainError as exc:
        status = f"waiting ({type(exc).__name__})"
    if status in WAITING or status.startswith("waiting"):
        try:
            raise self.retry(countdown=CONFIRM_DELAY_SECONDS)
        except MaxRetriesExceededError:
            return status  # the sweeper keeps checking
    return status


@shared_task(bind=True, name="chain.tasks.cancel_transaction_task", acks_late=True, max_retries=8)
def cancel_transaction_task(self: Task[Any, Any], transaction_id: str) -> str:
    """Sign, store and broadcast the cancel an operator asked for (`transaction_cancel_request`)."""
    try:
        return services.transaction_cancel(transaction_id=transaction_id).status
    except services.ReplaceRefused:  # a cancel too: mined or finished meanwhile, nothing left to cancel
        return ChainTransaction.objects.get(pk=transaction_id).status
    except TransientChainError as exc:
        # The sweeper re-enqueues the request if these retries run out.
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries or 0), 30)) from exc


@shared_task(name="chain.tasks.sweep_transactions_task")
@single_instance("chain.sweep_transactions")
def sweep_transactions_task(stale_seconds: float | None = None) -> dict[str, int]:
    """Periodic: re-enqueue lost submissions, confirm broadcast transactions, re-run failed handlers."""
    stale_after = SWEEP_STALE_AFTER if stale_seconds is None else datetime.timedelta(seconds=stale_seconds)
    return dataclasses.asdict(services.transaction_sweep(stale_after=stale_after))
