"""Listener event processors and the chain-lane transaction handler, registered in AppConfig.ready().

Each processor runs inside the listener's transaction that stores the event and advances the
cursor, so its writes commit with them; each is idempotent (an event seen twice changes nothing).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chain.listener import register_event_processor
from chain.services import register_transaction_handler
from config.enqueue import publish_on_commit
from payouts import gateway
from payouts.models import Asset, AssetHolder, Distribution
from payouts.services.confirmation import PAYOUT_EVENTS, payout_results_apply, payout_transaction_finished
from payouts.services.pausing import pause_transaction_finished
from payouts.services.withdrawals import withdrawal_transaction_finished
from payouts.tasks import start_distribution_task

if TYPE_CHECKING:
    from chain.events import DecodedEvent

logger = logging.getLogger(__name__)


def on_payout_event(event: DecodedEvent) -> None:
    """HolderPaid, HolderPaymentFailed, PayoutCompleted, DistributionExecuted."""
    payout_results_apply(events=[event], tx_hash=event.tx_hash)


def on_holder_balance_updated(event: DecodedEvent) -> None:
    asset = Asset.objects.filter(token_address=gateway.normalize(event.contract_address)).first()
    if asset is None:
        return
    holder = gateway.normalize(event.args["holder"])
    balance = int(event.args["newBalance"])
    block = event.block_number
    with transaction.atomic():
        current = AssetHolder.objects.select_for_update().filter(asset=asset, address=holder).first()
        if current is None:
            AssetHolder.objects.create(asset=asset, address=holder, balance=balance, balance_block=block)
            delta = 1 if balance > 0 else 0
        elif current.balance_block > block:
            return  # a newer balance is already known
        else:
            delta = (1 if balance > 0 else 0) - (1 if current.balance > 0 else 0)
            current.balance = balance
            current.balance_block = block
            current.save(update_fields=["balance", "balance_block", "updated_at"])
        if delta:
            Asset.objects.filter(pk=asset.pk).update(holders_count=F("holders_count") + delta)


def on_corporate_action(event: DecodedEvent) -> None:
    """DividendSet / CouponSet: a SCHEDULED corporate action at its execution date (once)."""
    asset = Asset.objects.filter(token_address=gateway.normalize(event.contract_address)).first()
    if asset is None:
        return
    kind = (
        Distribution.CorporateAction.DIVIDEND
        if event.event_name == "DividendSet"
        else Distribution.CorporateAction.COUPON
    )
    action_id = int(event.args["id"])
    if Distribution.objects.filter(asset=asset, corporate_action=kind, corporate_action_id=action_id).exists():
        return
    distribution_id = uuid.uuid4()
    Distribution.objects.create(
        id=distribution_id,
        asset=asset,
        distribution_type=Distribution.Type.CORPORATE_ACTION,
        corporate_action=kind,
        corporate_action_id=action_id,
        snapshot_id=int(event.args["snapshotId"]),
        amount_type=Distribution.AmountType.PER_TOKEN,
        amount_per_token=int(event.args["amountPerToken"]),
        scheduled_at=datetime.fromtimestamp(int(event.args["executionDate"]), tz=UTC),
        snapshot_block=event.block_number,
        concept=f"{kind.label} #{action_id}",
        chain_distribution_id=gateway.chain_distribution_id(distribution_id),
    )
    logger.info("corporate action recorded asset_id=%s kind=%s id=%s", asset.pk, kind, action_id)


def on_transfer(event: DecodedEvent) -> None:
    """Payment tokens arriving at a payout contract make that asset's AUTOMATED distributions due.

    Starting one reads the contract's balance (network I/O, which a processor must not do), so the
    processor only records that they are due, durably, with this transaction; a task starts them
    after commit, and the scheduled run is the backstop if that message is lost.
    """
    token = gateway.normalize(event.contract_address)
    receiver = gateway.normalize(event.args["to"])
    if int(event.args["value"]) <= 0:
        return
    due = Distribution.objects.filter(
        asset__payment_token_address=token,
        asset__payout_contract_address=receiver,
        subtype=Distribution.Subtype.AUTOMATED,
        status=Distribution.Status.SCHEDULED,
    )
    ids = [str(pk) for pk in due.values_list("id", flat=True)]
    if not ids:
        return
    now = timezone.now()
    due.filter(scheduled_at__isnull=True).update(scheduled_at=now, updated_at=now)
    for pk in ids:
        publish_on_commit(start_distribution_task, pk)


def register() -> None:

    for name in PAYOUT_EVENTS:
        register_event_processor("PayoutContract", name, on_payout_event)
    register_event_processor("AssetToken", "HolderBalanceUpdated", on_holder_balance_updated)
    register_event_processor("AssetToken", "DividendSet", on_corporate_action)
    register_event_processor("AssetToken", "CouponSet", on_corporate_action)
    register_event_processor("PaymentToken", "Transfer", on_transfer)
    register_transaction_handler(gateway.PAYOUT_BATCH_PURPOSE, payout_transaction_finished)
    register_transaction_handler(gateway.PAYOUT_WITHDRAW_PURPOSE, withdrawal_transaction_finished)
    register_transaction_handler(gateway.PAYOUT_PAUSE_PURPOSE, pause_transaction_finished)
