"""Assets: import from a token address, sync holders from the chain, sync on/off (pausing: `pausing`).

Chain reads and the payout-contract deployment happen outside database transactions. A sync
walks the token's holder list in pages and upserts each page in its own short transaction. Every
page and balance is read at ONE pinned block: the token reorders its list when a holder sells out
(swap-and-pop), so pages read at moving blocks could skip a holder. Holders absent from the list
at that block drop to a zero balance (rows are kept). Every balance carries the block it was read
at, so a late HolderBalanceUpdated event never overwrites a newer value. The sync also reads the
payout contract's pause flag, and writes it only if no operator toggled the asset meanwhile.
A sync runs in chunks of PAYOUT_CHUNK_HOLDERS holders, one task each (`asset_sync_step`), so no task
outlives the worker's time limit however many holders there are; the cursor and the pinned block
live on the asset row, so a chunk lost with its worker or its message resumes where it stopped.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chain.deploy import deploy_payout_contract
from chain.errors import ChainError
from chain.listener import listener_ensure
from chain.signers import get_signer
from config.alerts import AlertField, send_alert
from config.enqueue import publish_on_commit
from config.errors import Conflict, DomainError, InvalidInput, NotFound
from payouts import gateway
from payouts.bulk import upsert_holder_balances
from payouts.models import Asset, AssetHolder
from payouts.services.pausing import pause_follow_chain, pause_seen

logger = logging.getLogger(__name__)


def holders_page_seam(asset_id: uuid.UUID, offset: int) -> None:
    """Runs after a sync has read and stored the page of holders at `offset`, before the next page;
    does nothing.

    It names the instant between two page reads so that reliability tests can make the chain move
    there (a holder selling out reorders the token's holder list) and check no holder was lost.
    """


def asset_import(
    *,
    token_address: str,
    payment_token_address: str | None = None,
    payout_contract_address: str | None = None,
    name: str | None = None,
) -> Asset:
    """Read the token from the chain and create the asset (SYNCING); the sync runs in a task.

    Each address may be a 0x address or a Hedera id, resolved (and its id looked up) through the
    Mirror Node: see `chain.hedera`."""
    from payouts.tasks import sync_asset_task

    token = gateway.resolve_address(field="token_address", value=token_address)
    payout = (
        gateway.resolve_address(field="payout_contract_address", value=payout_contract_address)
        if payout_contract_address
        else None
    )
    payment = (
        gateway.resolve_address(field="payment_token_address", value=payment_token_address)
        if payment_token_address
        else None
    )
    if Asset.objects.filter(token_address=token.address).exists():
        raise Conflict("this token is already imported")
    client = gateway.client()
    try:
        details = client.token_details(gateway.checksum(token.address))
        if payout:
            info = client.payout_contract_info(gateway.checksum(payout.address))
            if gateway.normalize(info.asset_token) != token.address:
                raise InvalidInput("payout_contract_address", "this payout contract pays another token")
            paid_in = gateway.normalize(info.payment_token)
            if payment and paid_in != payment.address:
                raise InvalidInput("payment_token_address", "the payout contract pays in another token")
        elif payment:
            paid_in = payment.address
        else:
            raise InvalidInput("payment_token_address", "required when no payout contract is given")
        payment_decimals = gateway.erc20_decimals(paid_in)
        payment_symbol = gateway.erc20_symbol(paid_in)
    except ChainError as exc:
        raise InvalidInput("token_address", f"could not read the token from the chain: {exc}") from exc
    if payment is None:  # the payout contract's payment token: look its Hedera id up too
        payment = gateway.resolve_address(field="payment_token_address", value=paid_in)
    asset_name = name or details.name
    if Asset.objects.filter(name=asset_name).exists():
        raise Conflict(f"an asset named {asset_name!r} exists: give another name")
    with transaction.atomic():
        asset = Asset.objects.create(
            name=asset_name,
            symbol=details.symbol,
            token_address=token.address,
            hedera_token_id=token.hedera_id,
            asset_type=details.asset_type,
            decimals=details.decimals,
            maturity_date=details.maturity_date,
            payout_contract_address=payout.address if payout else "",
            hedera_payout_contract_id=payout.hedera_id if payout else None,
            payment_token_address=payment.address,
            hedera_payment_token_id=payment.hedera_id,
            payment_token_decimals=payment_decimals,
            payment_token_symbol=payment_symbol,
            sync_status=Asset.SyncStatus.SYNCING,
            sync_started_at=timezone.now(),
        )
        publish_on_commit(sync_asset_task, str(asset.id))
    logger.info("asset imported asset_id=%s token=%s hedera_id=%s", asset.id, token.address, token.hedera_id)
    return asset


def asset_request_sync(*, asset_id: uuid.UUID) -> Asset:
    from payouts.tasks import sync_asset_task

    with transaction.atomic():
        asset = Asset.objects.select_for_update().filter(pk=asset_id).first()
        if asset is None:
            raise NotFound("asset not found")
        if asset.sync_status == Asset.SyncStatus.SYNCING:
            raise Conflict("a sync is already running")
        asset.mark_syncing(now=timezone.now())
        publish_on_commit(sync_asset_task, str(asset_id))
    return asset


def asset_sync(*, asset_id: uuid.UUID) -> Asset:
    """The whole sync in this process, chunk after chunk (the task runs one chunk per task)."""
    Asset.SYNC_MOVES.claim(
        Asset.objects.filter(pk=asset_id),
        Asset.SyncStatus.SYNCING,
        sync_started_at=timezone.now(),
        updated_at=timezone.now(),
        **Asset.SYNC_RESTART,
    )
    while asset_sync_step(asset_id=asset_id):
        pass
    return Asset.objects.get(pk=asset_id)


def asset_sync_step(*, asset_id: uuid.UUID) -> bool:
    """One chunk of a running sync: at most PAYOUT_CHUNK_HOLDERS holders, from where the last chunk
    stopped. The first chunk deploys/attaches the payout contract, watches the contracts and pins
    the block; the last one settles the asset SYNCED. True while chunks remain (the caller queues
    the next); a chain error fails the sync (FAILED, with the reason)."""

    asset = Asset.objects.filter(pk=asset_id, sync_status=Asset.SyncStatus.SYNCING).first()
    if asset is None:
        return False
    try:
        if asset.sync_block is None:
            _sync_begin(asset)
        if _sync_chunk(asset):
            return True
        _sync_finish(asset)
    except ChainError as exc:
        Asset.SYNC_MOVES.claim(
            Asset.objects.filter(pk=asset_id),
            Asset.SyncStatus.FAILED,
            sync_error=str(exc)[:2000],
            updated_at=timezone.now(),
        )
        logger.warning("asset sync failed asset_id=%s error=%s", asset_id, exc)
    return False


def _sync_begin(asset: Asset) -> None:
    """Deploy (or attach) the payout contract, watch the three contracts, pin the sync's block."""

    client = gateway.client()
    if not asset.payout_contract_address:
        token = gateway.checksum(asset.token_address)
        address = deploy_payout_contract(client, get_signer(), token, gateway.checksum(asset.payment_token_address))
        Asset.objects.filter(pk=asset.pk, payout_contract_address="").update(
            payout_contract_address=gateway.normalize(address)
        )
        asset.refresh_from_db(fields=["payout_contract_address"])
        logger.info("payout contract deployed asset_id=%s address=%s", asset.pk, address)
    _hedera_ids_fill(asset)
    block = client.block_number()
    for suffix, address, hedera_id, abi in (
        ("token", asset.token_address, asset.hedera_token_id, "AssetToken"),
        ("payout", asset.payout_contract_address, asset.hedera_payout_contract_id, "PayoutContract"),
        ("payment", asset.payment_token_address, asset.hedera_payment_token_id, "PaymentToken"),
    ):
        listener_ensure(
            name=f"asset-{asset.pk}-{suffix}",
            contract_address=gateway.checksum(address),
            abi_name=abi,
            start_block=block,
            hedera_id=hedera_id,
        )
    Asset.objects.filter(pk=asset.pk, sync_block__isnull=True).update(
        sync_block=block,
        sync_cursor=0,
        sync_started_at=asset.sync_started_at or timezone.now(),
        updated_at=timezone.now(),
    )
    asset.refresh_from_db(fields=["sync_block", "sync_cursor", "sync_started_at"])


def _hedera_ids_fill(asset: Asset) -> None:
    """Look up the Hedera ids the asset lacks (a payout contract the sync deployed; one the Mirror
    Node had not indexed yet at import). Best effort: an id still unknown, or a Mirror Node that does
    not answer, leaves it null until the next sync."""
    for field, address_field in (
        ("hedera_token_id", "token_address"),
        ("hedera_payout_contract_id", "payout_contract_address"),
        ("hedera_payment_token_id", "payment_token_address"),
    ):
        if getattr(asset, field) is not None:
            continue
        try:
            hedera_id = gateway.resolve_address(field=address_field, value=getattr(asset, address_field)).hedera_id
        except DomainError as exc:
            logger.info("hedera id not looked up asset_id=%s field=%s reason=%s", asset.pk, field, exc)
            continue
        if hedera_id is not None:
            Asset.objects.filter(pk=asset.pk, **{f"{field}__isnull": True}).update(**{field: hedera_id})
            setattr(asset, field, hedera_id)


def _sync_chunk(asset: Asset) -> bool:
    """Read and store the next chunk of holders, page by page; True if holders remain after it.

    Every holder read sees the state at the pinned block, so the chunks tile one fixed list and a
    holder not seen is one who held nothing at that block (later changes come from the listener).
    Each page is stored with the cursor moved past it in one transaction: a chunk cut short (a
    worker killed) resumes after the last stored page."""
    client = gateway.client()
    token = gateway.checksum(asset.token_address)
    block = asset.sync_block
    assert block is not None  # noqa: S101 - pinned by _sync_begin
    page_size = max(1, settings.PAYOUT_SYNC_PAGE_SIZE)
    count = client.holder_count(token, block=block)
    end = min(count, asset.sync_cursor + max(1, settings.PAYOUT_CHUNK_HOLDERS))
    for offset in range(asset.sync_cursor, end, page_size):
        holders = client.holders_page(token, offset, min(page_size, end - offset), block=block)
        balances = client.balances_of(token, holders, block=block)
        page = sorted(zip((gateway.normalize(h) for h in holders), balances, strict=True))
        with transaction.atomic():
            moved = Asset.objects.filter(
                pk=asset.pk, sync_status=Asset.SyncStatus.SYNCING, sync_block=block, sync_cursor=offset
            ).update(sync_cursor=offset + len(holders), sync_sweeps=0, updated_at=timezone.now())
            if not moved:  # restarted, failed or moved on by someone else: this chunk is not ours
                return False
            upsert_holder_balances(asset_id=asset.pk, rows=page, block=block, seen_at=asset.sync_started_at)  # type: ignore[arg-type]
        holders_page_seam(asset.pk, offset)
    asset.sync_cursor = end
    return end < count


def _sync_finish(asset: Asset) -> None:
    """Holders not seen at the pinned block drop to zero; details, pause flag; SYNCED."""
    client = gateway.client()
    block = asset.sync_block
    details = client.token_details(gateway.checksum(asset.token_address))
    payment_symbol = asset.payment_token_symbol or gateway.erc20_symbol(asset.payment_token_address)
    # The pause flag read here may be old when it is written: note what the database said just
    # before reading it, so an operator's later (or still pending) toggle wins.
    seen = pause_seen(asset.pk)
    info = client.payout_contract_info(gateway.checksum(asset.payout_contract_address))
    now = timezone.now()
    with transaction.atomic():
        if (
            not Asset.objects.select_for_update()
            .filter(pk=asset.pk, sync_status=Asset.SyncStatus.SYNCING, sync_block=block)
            .exists()
        ):
            return
        AssetHolder.objects.filter(asset=asset, balance__gt=0, balance_block__lte=block).exclude(
            last_seen_sync_at=asset.sync_started_at
        ).update(balance=0, balance_block=block, updated_at=now)
        Asset.SYNC_MOVES.claim(
            Asset.objects.filter(pk=asset.pk),
            Asset.SyncStatus.SYNCED,
            symbol=details.symbol,
            decimals=details.decimals,
            payment_token_symbol=payment_symbol,
            maturity_date=details.maturity_date,
            holders_count=AssetHolder.objects.filter(asset=asset, balance__gt=0).count(),
            last_synced_at=now,
            sync_error="",
            sync_sweeps=0,
            updated_at=now,
        )
        pause_follow_chain(asset.pk, seen=seen, paused_on_chain=info.paused)
    logger.info("asset synced asset_id=%s holders=%s block=%s", asset.pk, asset.sync_cursor, block)


def asset_sync_stalled(*, asset_id: uuid.UUID, sweeps: int) -> bool:
    """The sweeper re-sent this sync `sweeps` times without progress: fail it and say so."""
    message = (
        f"the sync made no progress in {sweeps} sweeps (its task keeps failing or is never run: see the "
        "worker log); sync it again once the cause is fixed"
    )
    failed = Asset.SYNC_MOVES.claim(
        Asset.objects.filter(pk=asset_id, sync_sweeps=sweeps),
        Asset.SyncStatus.FAILED,
        sync_error=message,
        updated_at=timezone.now(),
    )
    if not failed:
        return False
    logger.warning("asset sync stalled asset_id=%s sweeps=%s", asset_id, sweeps)
    send_alert(
        cause=f"asset-sync-stalled:{asset_id}",
        title="Asset sync stalled",
        description=f"The holder sync of asset {asset_id} failed: {message}.",
        fields=[AlertField("Asset", str(asset_id))],
    )
    return True


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
