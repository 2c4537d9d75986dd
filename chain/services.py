"""Public services of the chain app. The submission lane's live in `chain.lane.services`; the one
that turns an address input (a 0x address or a Hedera id) into an EVM address is `chain.hedera`'s."""

from __future__ import annotations

from chain.hedera import ResolvedAddress, address_resolve
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
    "ResolvedAddress",
    "address_resolve",
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
