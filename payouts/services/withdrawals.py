"""Withdrawing leftover funds from a payout contract (its admin only), through the chain lane.

Only what no running distribution or other withdrawal has reserved can be withdrawn (see
`payouts.services.funding`); a withdrawal reserves its amount until its transaction is final. Each
one is a `FundsWithdrawal` row: who asked, where to, how much, and what the chain said.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from chain.fields import UINT256_MAX
from chain.services import transaction_enqueue
from chain.signers import get_signer
from config.errors import Conflict, InvalidInput, NotFound
from payouts import gateway
from payouts.models import Asset, FundsWithdrawal
from payouts.services.funding import funds_read, funds_require

if TYPE_CHECKING:
    from chain.models import ChainTransaction

logger = logging.getLogger(__name__)

INTENT_PREFIX = "payout-withdraw:"


def funds_withdraw(
    *, asset_id: uuid.UUID, to_address: str, amount: int, requested_by_id: int | None = None
) -> FundsWithdrawal:
    """Send `amount` payment-token base units from the asset's payout contract to `to_address`."""

    asset = Asset.objects.filter(pk=asset_id).first()
    if asset is None:
        raise NotFound("asset not found")
    try:
        to = gateway.normalize(to_address)
    except (ValueError, TypeError):
        raise InvalidInput("to_address", "not a valid 0x address") from None
    if not 0 < amount <= UINT256_MAX:
        raise InvalidInput("amount", "must be greater than zero and fit in uint256")
    if not asset.payout_contract_address:
        raise Conflict("the asset has no payout contract yet: wait for its sync to finish")
    admin = gateway.client().payout_contract_admin(gateway.checksum(asset.payout_contract_address))
    if gateway.normalize(admin) != gateway.normalize(get_signer().address):
        raise Conflict(f"only the payout contract's admin ({admin}) can withdraw; this service signs for another key")
    read = funds_read(asset)
    with transaction.atomic():
        locked = Asset.objects.select_for_update().get(pk=asset_id)
        funds_require(locked, read, need=amount, what="this withdrawal")
        withdrawal = FundsWithdrawal.objects.create(
            asset=locked, to_address=to, amount=amount, requested_by_id=requested_by_id
        )
        chain_transaction = transaction_enqueue(
            intent_key=f"{INTENT_PREFIX}{withdrawal.pk}",
            purpose=gateway.PAYOUT_WITHDRAW_PURPOSE,
            to=gateway.checksum(locked.payout_contract_address),
            data=gateway.encode_withdraw(to, amount),
        )
        withdrawal.chain_transaction_id = chain_transaction.pk
        withdrawal.save(update_fields=["chain_transaction_id"])
    logger.info("funds withdrawal requested withdrawal_id=%s asset_id=%s amount=%s", withdrawal.pk, asset_id, amount)
    return withdrawal


def withdrawal_transaction_finished(chain_transaction: ChainTransaction) -> None:
    """Lane handler for purpose `payout_withdraw` (inside the lane's transaction): record the outcome."""
    if not chain_transaction.intent_key.startswith(INTENT_PREFIX):
        return
    withdrawal = (
        FundsWithdrawal.objects.select_for_update()
        .filter(pk=chain_transaction.intent_key.removeprefix(INTENT_PREFIX))
        .first()
    )
    if withdrawal is None or withdrawal.status != FundsWithdrawal.Status.PENDING:
        return
    if str(chain_transaction.status) == "CONFIRMED":
        withdrawal.mark_confirmed(tx_hash=chain_transaction.tx_hash or "", now=timezone.now())
    else:
        withdrawal.mark_failed(error=chain_transaction.error or str(chain_transaction.status), now=timezone.now())
    logger.info("funds withdrawal finished withdrawal_id=%s status=%s", withdrawal.pk, withdrawal.status)
