"""Executing a started distribution: snapshot, compute, write payments and batches, submit batches.

Planning (after `distribution_start`) runs in chunks of PAYOUT_CHUNK_HOLDERS holders, one task each
(`distribution_plan_step`): chain reads happen outside any database transaction, each page of
holders is stored in PlanningHolder with the cursor moved past it, so a lost chunk resumes where it
stopped. Once every holder is read they are spooled in address order to a snapshot file; then,
under a row lock that makes planning happen once, the payments are streamed into the table (COPY
on PostgreSQL) and the batch rows written.
`distribution_submit_batches` hands PENDING batches to the chain lane (`transaction_enqueue`)
in chunks, each batch update atomic with its lane row, and re-enqueues itself while work remains.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chain.errors import ChainError, PermanentChainError
from chain.services import estimate_gas, transaction_enqueue
from config.alerts import AlertField, send_alert
from config.enqueue import publish, publish_on_commit
from payouts import allocation, gateway
from payouts.bulk import PaymentRow, write_holder_payments
from payouts.models import Asset, AssetHolder, BatchPayout, Distribution, HolderPayment, PlanningHolder
from payouts.services.confirmation import batch_roll_up, distribution_roll_up
from payouts.services.funding import funds_locked, funds_read, underfunded_message
from payouts.snapshot import HolderSnapshot

logger = logging.getLogger(__name__)

Status = Distribution.Status
OPEN = (HolderPayment.Status.PENDING, HolderPayment.Status.RETRYING)
SNAPSHOT_PAGE = 500
SUBMIT_CHUNK = 50
# One batch must fit in this share of the block gas limit (the rest is headroom for the estimate's
# error and for other transactions).
GAS_BUDGET_NUMERATOR, GAS_BUDGET_DENOMINATOR = 1, 2


class PlanningError(Exception):
    """The distribution cannot be planned (nothing to split, bad chain state): it fails."""


def distribution_plan(*, distribution_id: uuid.UUID) -> None:
    """Plan in this process, chunk after chunk (the task runs one chunk per task)."""
    while distribution_plan_step(distribution_id=distribution_id):
        pass


def distribution_plan_step(*, distribution_id: uuid.UUID) -> bool:
    """One chunk of planning; True while holders remain to read (the caller queues the next chunk).

    Each chunk reads at most PAYOUT_CHUNK_HOLDERS holders into PlanningHolder, from where the last
    one stopped; the chunk that reads the last holder also plans: the total, the batch size, the
    payments and batches, written once under a row lock. A planned distribution only re-submits.
    """
    from payouts.tasks import submit_batches_task

    distribution = Distribution.objects.select_related("asset").get(pk=distribution_id)
    if distribution.status != Status.IN_PROGRESS:
        return False
    if distribution.holders_count is not None:
        publish(submit_batches_task, str(distribution_id))
        return False
    try:
        if not distribution.plan_read_done:
            if _read_holders_chunk(distribution):
                return True
            distribution.refresh_from_db(fields=["status", "holders_count", "plan_read_done"])
            if distribution.status != Status.IN_PROGRESS or not distribution.plan_read_done:
                return False  # planning ended, or moved on, elsewhere
        _plan_from_read_holders(distribution)
    except PlanningError as exc:
        _fail_planning(distribution_id, str(exc))
    except PermanentChainError as exc:  # a read that can never work (no token there, ...): say so now
        _fail_planning(distribution_id, f"could not read the holders from the chain: {exc}")
    return False


def _read_holders_chunk(distribution: Distribution) -> bool:
    """Read the next chunk of holders into PlanningHolder; True if holders remain after it.

    Corporate actions read every known address at the token's snapshot (the holder table has every
    address that held at it: the listener stored the event that created the action after every
    balance change before it); the cursor is the last address read. Everything else reads the
    token's holder list and balances at ONE block pinned by the first chunk (never the holder
    table, which trails the chain); the cursor is the position in that list.
    """
    if distribution.snapshot_id is not None:
        return _read_snapshot_chunk(distribution, int(distribution.snapshot_id))
    client = gateway.client()
    token = gateway.checksum(distribution.asset.token_address)
    if distribution.snapshot_block is None:
        Distribution.objects.filter(pk=distribution.pk, snapshot_block__isnull=True, holders_count__isnull=True).update(
            snapshot_block=client.block_number()
        )
        distribution.refresh_from_db(fields=["snapshot_block", "plan_cursor"])
    block = distribution.snapshot_block
    assert block is not None  # noqa: S101 - pinned just above
    page = max(1, settings.PAYOUT_SYNC_PAGE_SIZE)
    start = int(distribution.plan_cursor or 0)
    count = client.holder_count(token, block=block)
    end = min(count, start + max(1, settings.PAYOUT_CHUNK_HOLDERS))
    for offset in range(start, end, page):
        holders = client.holders_page(token, offset, min(page, end - offset), block=block)
        balances = client.balances_of(token, holders, block=block)
        rows = zip((gateway.normalize(holder) for holder in holders), balances, strict=True)
        if not _store_read_holders(distribution, rows, cursor=distribution.plan_cursor, to=str(offset + len(holders))):
            return False
    if end < count:
        return True
    _holders_all_read(distribution, cursor=distribution.plan_cursor)
    return False


def _read_snapshot_chunk(distribution: Distribution, snapshot_id: int) -> bool:
    """Balances at the token's snapshot for the next known addresses, page by page."""
    client = gateway.client()
    token = gateway.checksum(distribution.asset.token_address)
    cursor, left = distribution.plan_cursor, max(1, settings.PAYOUT_CHUNK_HOLDERS)
    while left:
        size = min(SNAPSHOT_PAGE, left)
        page = list(
            AssetHolder.objects.filter(asset_id=distribution.asset_id, address__gt=cursor)
            .order_by("address")
            .values_list("address", flat=True)[:size]
        )
        if page:
            balances = client.balances_of(token, [gateway.checksum(a) for a in page], snapshot_id=snapshot_id)
            if not _store_read_holders(distribution, zip(page, balances, strict=True), cursor=cursor, to=page[-1]):
                return False
            cursor, left = page[-1], left - len(page)
        if len(page) < size:
            _holders_all_read(distribution, cursor=cursor)
            return False
    return True


def _store_read_holders(distribution: Distribution, rows: Iterable[tuple[str, int]], *, cursor: str, to: str) -> bool:
    """Store one page of read holders (positive balances) with the cursor moved past it, atomically;
    False if the cursor is not where this page starts (planning moved on, or ended, elsewhere)."""
    with transaction.atomic():
        moved = Distribution.objects.filter(
            pk=distribution.pk, status=Status.IN_PROGRESS, holders_count__isnull=True, plan_cursor=cursor
        ).update(plan_cursor=to, plan_sweeps=0, updated_at=timezone.now())
        if moved:
            PlanningHolder.objects.bulk_create(
                [
                    PlanningHolder(distribution_id=distribution.pk, address=address, balance=balance)
                    for address, balance in rows
                    if balance > 0
                ],
                batch_size=1_000,
            )
    distribution.plan_cursor = to
    return bool(moved)


def _holders_all_read(distribution: Distribution, *, cursor: str) -> None:
    Distribution.objects.filter(
        pk=distribution.pk, status=Status.IN_PROGRESS, holders_count__isnull=True, plan_cursor=cursor
    ).update(plan_read_done=True, updated_at=timezone.now())


def _plan_from_read_holders(distribution: Distribution) -> None:
    """Every holder is read: spool them in address order, fund the total, write the plan once."""
    with HolderSnapshot() as snapshot:
        snapshot.append_many(_read_holders(distribution.pk))
        total = _fund_total(distribution, snapshot)
        size = _fit_batch_size(distribution, snapshot, total=total)
        with transaction.atomic():
            # The asset comes with the row: nothing may lazy-load while the COPY streams.
            locked = (
                Distribution.objects.select_related("asset").select_for_update(of=("self",)).get(pk=distribution.pk)
            )
            if locked.status != Status.IN_PROGRESS or locked.holders_count is not None or not locked.plan_read_done:
                return
            _write_plan(locked, snapshot, total=total, size=size, block=locked.snapshot_block)
            PlanningHolder.objects.filter(distribution_id=distribution.pk).delete()


def _read_holders(distribution_id: uuid.UUID) -> Iterator[tuple[str, int]]:
    last = ""
    while True:
        page = list(
            PlanningHolder.objects.filter(distribution_id=distribution_id, address__gt=last)
            .order_by("address")
            .values_list("address", "balance")[:SNAPSHOT_PAGE]
        )
        if not page:
            return
        yield from ((address, int(balance)) for address, balance in page)
        last = page[-1][0]


def _fund_total(distribution: Distribution, snapshot: HolderSnapshot) -> int:
    """The exact total to pay, checked against what the payout contract holds minus what others
    reserved, and kept on the row (which from then on reserves it). FIXED: the amount. PERCENTAGE:
    the share of what is available, read ONCE. PER_TOKEN: the sum over the snapshot."""
    if snapshot.balance_sum == 0:
        raise PlanningError("no holder has a positive balance at the snapshot")
    asset = distribution.asset
    total = distribution.computed_total
    if total is None and distribution.amount_type == Distribution.AmountType.PER_TOKEN:
        total = sum(amount for _, _, amount in _amounts(distribution, snapshot, 0))
    read = funds_read(asset)
    with transaction.atomic():
        locked = Asset.objects.select_for_update().get(pk=asset.pk)
        funds = funds_locked(locked, read, exclude=distribution.pk)
        if total is None:
            assert distribution.percentage_bps is not None  # noqa: S101 - checked at creation
            total = allocation.percentage_total(balance=funds.available, basis_points=distribution.percentage_bps)
        total = int(total)
        if total <= 0:
            raise PlanningError("the amount to distribute is zero (is the payout contract funded?)")
        if total > funds.available:
            raise PlanningError(underfunded_message(locked, funds, need=total, what="this distribution"))
        Distribution.objects.filter(pk=distribution.pk, holders_count__isnull=True).update(computed_total=total)
    distribution.computed_total = total
    return total


def _fit_batch_size(distribution: Distribution, snapshot: HolderSnapshot, *, total: int) -> int:
    """PAYOUT_BATCH_SIZE, lowered so that one batch's estimated gas fits the block gas budget."""

    if distribution.batch_size:
        return distribution.batch_size
    size = max(1, settings.PAYOUT_BATCH_SIZE)
    sample = list(itertools.islice(snapshot.rows(), size))
    if not sample:
        return size
    asset = distribution.asset
    probe = gateway.chain_batch_id(
        chain_distribution_id=distribution.chain_distribution_id, batch_id=0, attempt=0
    )  # never submitted: attempts start at 1

    def estimate(holders: list[str]) -> int:
        data = gateway.encode_batch(
            bond_cash_out=distribution.distribution_type == Distribution.Type.BOND_CASH_OUT,
            distribution_hex=distribution.chain_distribution_id,
            batch_hex=probe,
            distribution_total=max(total, len(holders)),
            holders_count=snapshot.count,
            holders=holders,
            amounts=[1] * len(holders),
            token_amounts=[1] * len(holders),  # every holder in the snapshot holds at least one base unit
        )
        return estimate_gas(to=gateway.checksum(asset.payout_contract_address), data=data)

    # A batch too big for a block cannot even be estimated ("gas required exceeds allowance"):
    # halve the probe until it can, then scale to the budget (gas grows linearly with holders).
    holders = [address for address, _ in sample]
    try:
        budget = gateway.client().block_gas_limit() * GAS_BUDGET_NUMERATOR // GAS_BUDGET_DENOMINATOR
    except ChainError as exc:
        logger.warning("block gas limit unknown, keeping the configured size error=%s size=%s", exc, size)
        return size
    while True:
        try:
            gas = estimate(holders)
            break
        except ChainError as exc:
            if len(holders) == 1:
                logger.warning("batch gas estimate failed, keeping the configured size error=%s size=%s", exc, size)
                return size
            holders = holders[: len(holders) // 2]
    if gas > budget or len(holders) < len(sample):
        size = max(1, min(size, len(holders) * budget // gas))
        logger.info("batch size lowered to fit the block gas limit size=%s probe=%s gas=%s", size, len(holders), gas)
    return size


def _amounts(distribution: Distribution, snapshot: HolderSnapshot, total: int) -> Iterator[tuple[str, int, int]]:
    if distribution.amount_type == Distribution.AmountType.PER_TOKEN:
        assert distribution.amount_per_token is not None  # noqa: S101 - PER_TOKEN always has it
        return allocation.per_token_amounts(
            snapshot.rows(), amount_per_token=int(distribution.amount_per_token), decimals=distribution.asset.decimals
        )
    return allocation.split_pro_rata(total=total, rows=snapshot.rows, balance_sum=snapshot.balance_sum)


def _write_plan(
    distribution: Distribution, snapshot: HolderSnapshot, *, total: int, size: int, block: int | None
) -> None:
    from payouts.tasks import submit_batches_task

    now = timezone.now()
    batch_counts: list[int] = []
    paid_total = [0]

    def payment_rows() -> Iterator[PaymentRow]:
        position = 0
        for address, balance, amount in _amounts(distribution, snapshot, total):
            if amount <= 0:
                continue  # owed nothing: no payment row, no gas spent
            number = allocation.batch_number_of(position, size)
            if number > len(batch_counts):
                batch_counts.append(0)
            batch_counts[number - 1] += 1
            paid_total[0] += amount
            position += 1
            yield number, address, balance, amount

    written = write_holder_payments(distribution_id=distribution.id, rows=payment_rows(), now=now)
    BatchPayout.objects.bulk_create(
        [
            BatchPayout(distribution=distribution, number=number, holders_count=count)
            for number, count in enumerate(batch_counts, start=1)
        ],
        batch_size=1_000,
    )
    distribution.holders_count = written
    distribution.batches_count = len(batch_counts)
    distribution.batch_size = size
    distribution.planned_at = now
    distribution.snapshot_block = block
    if paid_total[0] != total:  # the split sums exactly (largest remainder), PER_TOKEN was summed from it
        raise PlanningError(f"planned payments sum to {paid_total[0]}, not the total {total}")
    distribution.computed_total = total
    fields = [
        "holders_count", "batches_count", "batch_size", "planned_at", "snapshot_block", "computed_total", "updated_at",
    ]  # fmt: skip
    distribution.save(update_fields=fields)
    if written == 0:
        distribution.mark_failed(error="no holder is owed a positive amount", now=now)
    logger.info(
        "distribution planned distribution_id=%s holders=%s batches=%s batch_size=%s",
        distribution.id,
        written,
        len(batch_counts),
        size,
    )
    if written:
        distribution_key = str(distribution.id)
        publish_on_commit(submit_batches_task, distribution_key)


def _fail_planning(distribution_id: uuid.UUID, message: str) -> bool:
    """FAILED with the reason, what planning read dropped (a retry plans afresh); False if it was
    no longer planning."""
    now = timezone.now()
    with transaction.atomic():
        distribution = Distribution.objects.select_for_update().get(pk=distribution_id)
        if distribution.status != Status.IN_PROGRESS or distribution.holders_count is not None:
            return False
        # what planning read is dropped: a retry plans afresh
        dropped: dict[str, Any] = {"plan_cursor": "", "plan_read_done": False, "plan_sweeps": 0}
        if distribution.snapshot_id is None:  # the token-list block is pinned afresh by the retry
            dropped["snapshot_block"] = None
        distribution.mark_failed(error=message, now=now, **dropped)
        PlanningHolder.objects.filter(distribution_id=distribution_id).delete()
    logger.warning("distribution planning failed distribution_id=%s error=%s", distribution_id, message)
    return True


def distribution_plan_stalled(*, distribution_id: uuid.UUID, sweeps: int) -> bool:
    """The sweeper re-sent this planning `sweeps` times without progress: fail it and say so."""
    message = (
        f"planning made no progress in {sweeps} sweeps (its task keeps failing or is never run: see the "
        "worker log); retry it once the cause is fixed"
    )
    if not _fail_planning(distribution_id, message):
        return False
    send_alert(
        cause=f"payout-plan-stalled:{distribution_id}",
        title="Payout planning stalled",
        description=f"Distribution {distribution_id} failed: {message}.",
        fields=[AlertField("Distribution", str(distribution_id))],
    )
    return True


def distribution_submit_batches(*, distribution_id: uuid.UUID, limit: int = SUBMIT_CHUNK) -> int:
    """Hand up to `limit` PENDING batches to the chain lane; returns how many were submitted."""
    from payouts.tasks import submit_batches_task

    submitted = 0
    with transaction.atomic():
        # the distribution first, like every path that changes its batches (one lock order)
        distribution = (
            Distribution.objects.select_for_update(of=("self",)).select_related("asset").get(pk=distribution_id)
        )
        asset = distribution.asset
        if distribution.status != Status.IN_PROGRESS or asset.is_paused or asset.pause_state != Asset.PauseState.ACTIVE:
            # Held until the chain is confirmed unpaused: a batch estimated before the unpause is
            # mined would revert with "paused" (the pause toggle's handler releases them).
            return 0
        batches = list(
            BatchPayout.objects.select_for_update(skip_locked=True)
            .filter(distribution=distribution, status=BatchPayout.Status.PENDING)
            .order_by("number")[:limit]
        )
        now = timezone.now()
        for batch in batches:
            rows = list(
                HolderPayment.objects.filter(distribution=distribution, batch_number=batch.number, status__in=OPEN)
                .order_by("holder_address")
                .values_list("holder_address", "amount", "balance")
            )
            if not rows:  # everyone in it was settled meanwhile (a late confirmation): nothing to send
                batch_roll_up(batch_id=batch.id, settle_open=False)
                distribution_roll_up(distribution_id=distribution.pk)
                continue
            attempt = batch.attempts + 1
            batch_hex = gateway.chain_batch_id(
                chain_distribution_id=distribution.chain_distribution_id, batch_id=batch.id, attempt=attempt
            )
            data = gateway.encode_batch(
                bond_cash_out=distribution.distribution_type == Distribution.Type.BOND_CASH_OUT,
                distribution_hex=distribution.chain_distribution_id,
                batch_hex=batch_hex,
                distribution_total=int(distribution.computed_total or 0),  # set by planning
                holders_count=distribution.holders_count or 0,
                holders=[address for address, _, _ in rows],
                amounts=[int(amount) for _, amount, _ in rows],
                # a cash-out burns exactly the balance it was planned from, and pays for exactly that
                token_amounts=[int(balance) for _, _, balance in rows],
            )
            chain_tx = transaction_enqueue(
                intent_key=gateway.batch_intent_key(batch.id, attempt),
                purpose=gateway.PAYOUT_BATCH_PURPOSE,
                to=gateway.checksum(asset.payout_contract_address),
                data=data,
            )
            batch.mark_in_progress(attempt=attempt, chain_batch_id=batch_hex, chain_transaction_id=chain_tx.id, now=now)
            submitted += 1
        more = BatchPayout.objects.filter(distribution=distribution, status=BatchPayout.Status.PENDING).exists()
        if more and len(batches) == limit:  # the rest of a long list (fewer: another submitter holds them)
            publish_on_commit(submit_batches_task, str(distribution_id))
    logger.info("batches submitted distribution_id=%s count=%s more=%s", distribution_id, submitted, more)
    return submitted
