"""Payouts business logic: keyword-only services, each owning its transaction.

- assets: import, sync, sync on/off
- pausing: pause/unpause through the lane, the toggle's handler, what a sync may overwrite
- distributions: create, cancel, start (the exactly-once claim) and recurrence
- catch_up: a due start that first applies a recurring series' catch-up policy to missed occurrences
- execution: plan (snapshot, amounts, bulk writes) and batch submission to the chain lane
- confirmation: apply on-chain results, roll statuses up, the lane's transaction handler
- operations: retry, scheduled runs, the sweeper
- funding: what a payout contract holds and what running distributions reserved of it
- withdrawals: the admin takes unreserved funds back
- reconciliation: the database's record of a distribution against the chain's, holder by holder
"""

from __future__ import annotations

from payouts.services.assets import (
    asset_import,
    asset_request_sync,
    asset_set_sync_enabled,
    asset_sync,
    asset_sync_step,
    assets_sync_due,
)
from payouts.services.catch_up import distribution_start_due
from payouts.services.confirmation import (
    batch_reconcile,
    batch_roll_up,
    distribution_roll_up,
    payout_results_apply,
    payout_transaction_finished,
)
from payouts.services.distributions import distribution_cancel, distribution_create, distribution_start
from payouts.services.execution import distribution_plan, distribution_plan_step, distribution_submit_batches
from payouts.services.funding import Underfunded
from payouts.services.operations import (
    distribution_retry,
    distributions_sweep,
    retry_failed_holder_payments,
    run_scheduled_distributions,
)
from payouts.services.pausing import asset_pause_refresh, asset_set_paused, pause_transaction_finished
from payouts.services.reconciliation import (
    ReconciliationReport,
    distribution_reconcile,
    distributions_reconcile_recent,
)
from payouts.services.withdrawals import funds_withdraw

__all__ = [
    "ReconciliationReport",
    "Underfunded",
    "asset_import",
    "asset_pause_refresh",
    "asset_request_sync",
    "asset_set_paused",
    "asset_set_sync_enabled",
    "asset_sync",
    "asset_sync_step",
    "assets_sync_due",
    "batch_reconcile",
    "batch_roll_up",
    "distribution_cancel",
    "distribution_create",
    "distribution_plan",
    "distribution_reconcile",
    "distribution_plan_step",
    "distribution_retry",
    "distribution_roll_up",
    "distribution_start",
    "distribution_start_due",
    "distribution_submit_batches",
    "distributions_reconcile_recent",
    "distributions_sweep",
    "funds_withdraw",
    "pause_transaction_finished",
    "payout_results_apply",
    "payout_transaction_finished",
    "retry_failed_holder_payments",
    "run_scheduled_distributions",
]
