"""Celery tasks of the chain app. The submission lane's live in `chain.lane.tasks`."""

from __future__ import annotations

from chain.lane.tasks import confirm_transaction_task, submit_transaction_task, sweep_transactions_task

__all__ = ["confirm_transaction_task", "submit_transaction_task", "sweep_transactions_task"]
