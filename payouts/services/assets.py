"""Assets: import from a token address, sync holders from the chain, sync on/off (pausing: `pausing`).

Chain reads and the payout-contract deployment happen outside database transactions. A sync
walks the token's holder list in pages and upserts each page in its own short transaction. Every
page and balance is read at ONE pinned block: the token reorders its list when a holder sells out
(swap-and-pop), so pages read at moving blocks could skip a holder. Holders absent from the list
at that block drop to a zero balance (rows are kept). Every balance carries the block it was read
at, so a late HolderBalanceUpdated event never overwrites a newer value. The sync also reads the
payout contract's pause flag, and writes it only if no operator toggled the asset meanwhile.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payouts import gateway
from payouts.bulk import upsert_holder_balances
from payouts.errors import Conflict, InvalidInput, NotFound
from payouts.models import Asset, AssetHolder
from payouts.services.pausing import pause_follow_chain, pause_seen

logger = logging.getLogger(__name__)


def holders_page_seam(asset_id: uuid.UUID, offset: int) -> None:
    """Runs after a sync has read and stored the page of holders at `offset`, before the next page;
    does nothing.

    It names the instant between two page reads so that reliability tests can make the chain move
    there (a holder selling out reorders the token's holder list) and check no holder was lost.
    """


def _address(field: str, value: str) -> str:
    try:
        return gateway.normalize(value)
    except (ValueError, TypeError):
        raise InvalidInput(field, "not a valid 0x address") from None


def asset_import(
    *,
    token_address: str,
    payment_token_address: str | None = None,
    payout_contract_address: str | None = None,
    name: str | None = None,
) -> Asset:
    """Read the token from the chain and create the asset (SYNCING); the sync runs in a task."""
    from chain.errors import ChainError
    from payouts.tasks import sync_asset_task

    token = _address("token_address", token_address)
    payout = _address("payout_contract_address", payout_contract_address) if payout_contract_address else ""
    payment = _address("payment_token_address", payment_token_address) if payment_token_address else ""
    if Asset.objects.filter(token_address=token).exists():
        raise Conflict("this token is already imported")
    client = gateway.client()
    try:
        details = client.token_details(gateway.checksum(token))
        if payout:
            info = client.payout_contract_info(gateway.checksum(payout))
            if gateway.normalize(info.asset_token) != token:
                raise InvalidInput("payout_contract_address", "this payout contract pays another token")
            if payment and gateway.normalize(info.payment_token) != payment:
                raise InvalidInput("payment_token_address", "the payout contract pays in another token")
            payment = gateway.normalize(info.payment_token)
        if not payment:
            raise InvalidInput("payment_token_address", "required when no payout contract is given")
        payment_decimals = gateway.erc20_decimals(payment)
    except ChainError as exc:
        raise InvalidInput("token_address", f"could not read the token from the chain: {exc}") from exc
    asset_name = name or details.name
    if Asset.objects.filter(name=asset_name).exists():
        raise Conflict(f"an asset named {asset_name!r} exists: give another name")
    with transaction.atomic():
        asset = Asset.objects.create(
            name=asset_name,
            symbol=details.symbol,
            token_address=token,
            asset_type=details.asset_type,
            decimals=details.decimals,
            maturity_date=details.maturity_date,
            payout_contract_address=payout,
            payment_token_address=payment,
            payment_token_decimals=payment_decimals,
            sync_status=Asset.SyncStatus.SYNCING,
            sync_started_at=timezone.now(),
        )
        transaction.on_commit(lambda: sync_asset_task.delay(str(asset.id)), robust=True)
    logger.info("asset imported asset_id=%s token=%s", asset.id, token)
    return asset


def asset_request_sync(*, asset_id: uuid.UUID) -> Asset:
    from payouts.tasks import sync_asset_task

    with transaction.atomic():
        asset = Asset.objects.select_for_update().filter(pk=asset_id).first()
        if asset is None:
            raise NotFound("asset not found")
        if asset.sync_status == Asset.SyncStatus.SYNCING:
            raise Conflict("a sync is already running")
        Asset.SyncStatus.check_move(asset.sync_status, Asset.SyncStatus.SYNCING)
        asset.sync_status = Asset.SyncStatus.SYNCING
        asset.sync_started_at = timezone.now()
        asset.save(update_fields=["sync_status", "sync_started_at", "updated_at"])
        transaction.on_commit(lambda: sync_asset_task.delay(str(asset_id)), robust=True)
    return asset


def asset_sync(*, asset_id: uuid.UUID) -> Asset:
    """Deploy/attach the payout contract, watch the contracts, load every holder; SYNCED or FAILED."""
    from chain.errors import ChainError

    asset = Asset.objects.get(pk=asset_id)
    started = timezone.now()
    Asset.objects.filter(pk=asset_id).update(sync_status=Asset.SyncStatus.SYNCING, sync_started_at=started)
    try:
        _sync(asset, started)
    except ChainError as exc:
        Asset.objects.filter(pk=asset_id).update(
            sync_status=Asset.SyncStatus.FAILED, sync_error=str(exc)[:2000], updated_at=timezone.now()
        )
        logger.warning("asset sync failed asset_id=%s error=%s", asset_id, exc)
    return Asset.objects.get(pk=asset_id)


def _sync(asset: Asset, started: object) -> None:
    from chain.deploy import deploy_payout_contract
    from chain.listener import listener_ensure
    from chain.signers import get_signer

    client = gateway.client()
    token = gateway.checksum(asset.token_address)
    details = client.token_details(token)
    if not asset.payout_contract_address:
        address = deploy_payout_contract(client, get_signer(), token, gateway.checksum(asset.payment_token_address))
        Asset.objects.filter(pk=asset.pk, payout_contract_address="").update(
            payout_contract_address=gateway.normalize(address)
        )
        asset.refresh_from_db(fields=["payout_contract_address"])
        logger.info("payout contract deployed asset_id=%s address=%s", asset.pk, address)
    # The pause flag read here may be minutes old when the sync writes it: note what the database
    # said just before reading it, so an operator's later (or still pending) toggle wins.
    seen = pause_seen(asset.pk)
    info = client.payout_contract_info(gateway.checksum(asset.payout_contract_address))
    block = client.block_number()
    for suffix, address, abi in (
        ("token", asset.token_address, "AssetToken"),
        ("payout", asset.payout_contract_address, "PayoutContract"),
        ("payment", asset.payment_token_address, "PaymentToken"),
    ):
        listener_ensure(
            name=f"asset-{asset.pk}-{suffix}",
            contract_address=gateway.checksum(address),
            abi_name=abi,
            start_block=block,
        )
    # Every holder read sees the state at `block`, so the pages tile one fixed list and a holder
    # not seen is one who held nothing at `block` (later changes come from the token's listener).
    page_size = max(1, settings.PAYOUT_SYNC_PAGE_SIZE)
    count = client.holder_count(token, block=block)
    for offset in range(0, count, page_size):
        holders = client.holders_page(token, offset, page_size, block=block)
        balances = client.balances_of(token, holders, block=block)
        page = sorted(zip((gateway.normalize(h) for h in holders), balances, strict=True))
        with transaction.atomic():
            upsert_holder_balances(asset_id=asset.pk, rows=page, block=block, seen_at=started)  # type: ignore[arg-type]
        holders_page_seam(asset.pk, offset)
    now = timezone.now()
    with transaction.atomic():
        AssetHolder.objects.filter(asset=asset, balance__gt=0, balance_block__lte=block).exclude(
            last_seen_sync_at=started  # type: ignore[misc]
        ).update(balance=0, balance_block=block, updated_at=now)
        Asset.objects.filter(pk=asset.pk).update(
            name=asset.name,
            symbol=details.symbol,
            decimals=details.decimals,
            maturity_date=details.maturity_date,
            holders_count=AssetHolder.objects.filter(asset=asset, balance__gt=0).count(),
            sync_status=Asset.SyncStatus.SYNCED,
            last_synced_at=now,
            sync_error="",
            updated_at=now,
        )
        pause_follow_chain(asset.pk, seen=seen, paused_on_chain=info.paused)
    logger.info("asset synced asset_id=%s holders=%s block=%s", asset.pk, count, block)


def asset_set_sync_enabled(*, asset_id: uuid.UUID, enabled: bool) -> Asset:
    updated = Asset.objects.filter(pk=asset_id).update(sync_enabled=enabled, updated_at=timezone.now())
    if not updated:
        raise NotFound("asset not found")
    return Asset.objects.get(pk=asset_id)


def assets_sync_due() -> int:
    """The periodic re-sync: every asset with sync enabled that is not syncing right now."""

    ids = list(
        Asset.objects.filter(sync_enabled=True)
        .exclude(sync_status=Asset.SyncStatus.SYNCING)
        .values_list("id", flat=True)
    )
    for asset_id in ids:
        try:
            asset_request_sync(asset_id=asset_id)
        except Conflict:
            continue
    return len(ids)
