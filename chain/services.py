"""Public services of the chain app. The submission lane's live in `chain.lane.services`."""

from __future__ import annotations

from chain.lane.services import (
    estimate_gas,
    register_transaction_handler,
    transaction_cancel,
    transaction_cancel_request,
    transaction_confirm,
    transaction_enqueue,
    transaction_handler_rerun,
    transaction_replace,
    transaction_submit,
    transaction_sweep,
    unregister_transaction_handler,
)

__all__ = [
    "estimate_gas",
    "register_transaction_handler",
    "transaction_cancel",
    "transaction_cancel_request",
    "transaction_confirm",
    "transaction_enqueue",
    "transaction_handler_rerun",
    "transaction_replace",
    "transaction_submit",
    "transaction_sweep",
    "unregister_transaction_handler",
]
