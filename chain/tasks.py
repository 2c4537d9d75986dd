"""Celery tasks of the chain app. The submission lane's live in `chain.lane.tasks`, the listener's in
`chain.listener.tasks`; all are named `chain.tasks.<name>` so that routes and schedules stay stable."""

from __future__ import annotations

from chain.lane.tasks import (
    cancel_transaction_task,
    confirm_transaction_task,
    submit_transaction_task,
    sweep_transactions_task,
)
from chain.listener.tasks import poll_listener_task, poll_listeners_task

__all__ = [
    "cancel_transaction_task",
    "confirm_transaction_task",
    "poll_listener_task",
    "poll_listeners_task",
    "submit_transaction_task",
    "sweep_transactions_task",
]
