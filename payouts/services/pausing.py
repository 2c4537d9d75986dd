"""Pausing an asset: the operator's toggle, the chain's answer, and what a sync may overwrite.

An asset pays only while its payout contract is confirmed unpaused (`Asset.PauseState.ACTIVE`). A
toggle is a lane transaction (`pause()` / `unpause()`); until the lane reports it final the asset is
PAUSING or UNPAUSING and sends no batch: a batch estimated before the unpause is mined reverts with
"paused" and spends a retry of every holder in it. The lane's handler for purpose `payout_pause`
finishes the move. Confirmed: PAUSED, or ACTIVE and the held batches are released. Failed or
reverted: our toggle changed nothing on chain, so the state goes back to the one before it, the
error is kept on the asset, the operators are alerted, and the chain is read again (in case someone
else toggled the contract).

A chain read (a sync, that re-read) is written only if no toggle was in flight when it was taken
and none was made since (`pause_generation` unchanged): it is older than any toggle made after it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Exists, OuterRef

from chain.services import transaction_enqueue
from config.alerts import AlertField, send_alert
from config.enqueue import publish_on_commit
from config.errors import Conflict, NotFound
from payouts import gateway
from payouts.models import Asset, BatchPayout, Distribution

if TYPE_CHECKING:
    from chain.models import ChainTransaction

logger = logging.getLogger(__name__)

PauseState = Asset.PauseState


@dataclass(frozen=True)
class PauseSeen:
    """The asset's pause state in the database just before a chain read."""

    generation: int
    state: str


def asset_set_paused(*, asset_id: uuid.UUID, paused: bool) -> Asset:
    """Pause or unpause the payout contract through the lane. The asset stops paying at once
    (PAUSING) and pays again only when the unpause is confirmed on chain (UNPAUSING until then)."""

    with transaction.atomic():
        asset = Asset.objects.select_for_update().filter(pk=asset_id).first()
        if asset is None:
            raise NotFound("asset not found")
        if not asset.payout_contract_address:
            raise Conflict("the asset has no payout contract yet: wait for its sync to finish")
        if asset.pause_state in PauseState.in_flight():
            # The lane does not wait for one transaction to be mined before estimating the next, so a
            # second toggle would be estimated against the state before the first one.
            raise Conflict(
                f"the asset is {asset.pause_state}: its last toggle is still on its way to the chain; "
                "try again once it is confirmed or has failed"
            )
        if (asset.pause_state == PauseState.PAUSED) == paused:
            raise Conflict(f"the asset is already {'paused' if paused else 'unpaused'}")
        if paused:
            asset.mark_pausing()
        else:
            asset.mark_unpausing()
        transaction_enqueue(
            intent_key=gateway.pause_intent_key(asset.pk, asset.pause_generation),
            purpose=gateway.PAYOUT_PAUSE_PURPOSE,
            to=gateway.checksum(asset.payout_contract_address),
            data=gateway.encode_pause(paused),
        )
    logger.info("asset %s asset_id=%s", asset.pause_state.lower(), asset_id)
    return asset


def pause_transaction_finished(chain_transaction: ChainTransaction) -> None:
    """Lane handler for purpose `payout_pause`, inside the lane's transaction recording the final state."""
    parsed = gateway.parse_pause_intent_key(chain_transaction.intent_key)
    if parsed is None:
        return
    asset_id, generation = parsed
    asset = Asset.objects.select_for_update().filter(pk=asset_id).first()
    if asset is None or asset.pause_generation != generation or asset.pause_state not in PauseState.in_flight():
        logger.info("pause toggle finished but is not the current one intent_key=%s", chain_transaction.intent_key)
        return
    pausing = asset.pause_state == PauseState.PAUSING
    status = str(chain_transaction.status)
    if status == "CONFIRMED":
        if pausing:
            asset.mark_paused()
        else:
            asset.mark_active()
        logger.info("asset pause confirmed on chain asset_id=%s state=%s", asset.pk, asset.pause_state)
    else:
        # Our toggle changed nothing on chain: the contract is where it was before it.
        error = (
            f"the {'pause' if pausing else 'unpause'} transaction {status.lower()}: "
            f"{chain_transaction.error or 'no reason given'}"
        )
        if pausing:
            asset.mark_active(error=error)
        else:
            asset.mark_paused(error=error)
        logger.warning("asset pause toggle failed asset_id=%s state=%s error=%s", asset.pk, asset.pause_state, error)
        _alert_after_commit(asset, chain_transaction)
        _refresh_after_commit(asset.pk)
    if asset.pause_state == PauseState.ACTIVE:
        _release_batches(asset.pk)


def asset_pause_refresh(*, asset_id: uuid.UUID) -> Asset:
    """Read the payout contract's pause flag and make the asset follow it (see `pause_follow_chain`)."""
    asset = Asset.objects.get(pk=asset_id)
    if not asset.payout_contract_address:
        return asset
    seen = pause_seen(asset_id)
    paused = gateway.client().payout_contract_info(gateway.checksum(asset.payout_contract_address)).paused
    with transaction.atomic():
        pause_follow_chain(asset_id, seen=seen, paused_on_chain=paused)
    return Asset.objects.get(pk=asset_id)


def pause_seen(asset_id: uuid.UUID) -> PauseSeen:
    """Take this just BEFORE reading the chain's pause flag, and hand it to `pause_follow_chain`."""
    generation, state = Asset.objects.values_list("pause_generation", "pause_state").get(pk=asset_id)
    return PauseSeen(generation=generation, state=state)


def pause_follow_chain(asset_id: uuid.UUID, *, seen: PauseSeen, paused_on_chain: bool) -> bool:
    """Inside the caller's transaction: make the pause state what the chain said, unless a toggle was
    in flight when the chain was read (the read may predate it) or was made since (it is newer than
    the read). True if the state changed."""
    target = PauseState.PAUSED if paused_on_chain else PauseState.ACTIVE
    if seen.state in PauseState.in_flight() or seen.state == target:
        return False
    asset = Asset.objects.select_for_update().get(pk=asset_id)
    if (asset.pause_generation, asset.pause_state) != (seen.generation, seen.state):
        return False
    if target == PauseState.PAUSED:
        asset.mark_paused(error=asset.pause_error)
    else:
        asset.mark_active(error=asset.pause_error)
    logger.warning("asset pause changed on chain by someone else asset_id=%s state=%s", asset_id, target)
    if target == PauseState.ACTIVE:
        _release_batches(asset_id)
    return True


def _release_batches(asset_id: uuid.UUID) -> None:
    """After commit, submit the batches held while the asset was not ACTIVE."""
    from payouts.tasks import submit_batches_task

    held = BatchPayout.objects.filter(distribution=OuterRef("pk"), status=BatchPayout.Status.PENDING)
    ids = [
        str(pk)
        for pk in Distribution.objects.filter(asset_id=asset_id, status=Distribution.Status.IN_PROGRESS)
        .filter(Exists(held))
        .values_list("id", flat=True)
    ]
    for pk in ids:
        publish_on_commit(submit_batches_task, pk)


def _refresh_after_commit(asset_id: uuid.UUID) -> None:
    from payouts.tasks import refresh_asset_pause_task

    publish_on_commit(refresh_asset_pause_task, str(asset_id))


def _alert_after_commit(asset: Asset, chain_transaction: ChainTransaction) -> None:
    now_paused = asset.pause_state == PauseState.PAUSED
    consequence = "it stays paused" if now_paused else "it is NOT paused and keeps paying"
    transaction.on_commit(
        partial(
            send_alert,
            cause=f"payout-pause-failed:{asset.pk}",
            title=f"{'Unpause' if now_paused else 'Pause'} failed on chain",
            description=f"{asset.name}: {asset.pause_error}. The asset is {asset.pause_state} again, as on chain: "
            f"{consequence}.",
            fields=[
                AlertField("Asset", f"{asset.name} ({asset.pk})"),
                AlertField("Payout contract", asset.payout_contract_address),
                AlertField("Transaction", chain_transaction.tx_hash or str(chain_transaction.pk)),
                AlertField("Error", asset.pause_error),
            ],
        ),
        robust=True,
    )
