"""Executing a started distribution: snapshot, compute, write payments and batches, submit batches.

`distribution_plan` (after `distribution_start`): chain reads and the snapshot happen outside any
database transaction; then, under a row lock that makes planning happen once, the payments are
streamed into the table (COPY on PostgreSQL) and the batch rows written.
`distribution_submit_batches` hands PENDING batches to the chain lane (`transaction_enqueue`)
in chunks, each batch update atomic with its lane row, and re-enqueues itself while work remains.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chain.errors import PermanentChainError
from payouts import allocation, gateway
from payouts.bulk import PaymentRow, write_holder_payments
from payouts.models import Asset, AssetHolder, BatchPayout, Distribution, HolderPayment
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
    """Plan once; a second call (or a concurrent one) finds it planned and only re-submits."""
    from payouts.tasks import submit_batches_task

    distribution = Distribution.objects.select_related("asset").get(pk=distribution_id)
    if distribution.status != Status.IN_PROGRESS:
        return
    if distribution.holders_count is not None:
        submit_batches_task.delay(str(distribution_id))
        return
    try:
        with HolderSnapshot() as snapshot:
            block = _take_snapshot(distribution, snapshot)
            total = _fund_total(distribution, snapshot)
            size = _fit_batch_size(distribution, snapshot, total=total)
            with transaction.atomic():
                # The asset comes with the row: nothing may lazy-load while the COPY streams.
                locked = (
                    Distribution.objects.select_related("asset").select_for_update(of=("self",)).get(pk=distribution_id)
                )
                if locked.status != Status.IN_PROGRESS or locked.holders_count is not None:
                    return
                _write_plan(locked, snapshot, total=total, size=size, block=block)
    except PlanningError as exc:
        _fail_planning(distribution_id, str(exc))
    except PermanentChainError as exc:  # a read that can never work (no token there, ...): say so now
        _fail_planning(distribution_id, f"could not read the holders from the chain: {exc}")


def _take_snapshot(distribution: Distribution, snapshot: HolderSnapshot) -> int | None:
    """One consistent on-chain view of the holders; returns the block it was read at.

    Corporate actions read every known address at the token's snapshot (the holder table has every
    address that held at it: the listener stored the event that created the action after every
    balance change before it). Everything else reads the token's holder list and balances at ONE
    block at or after the start: never the holder table, which trails the chain.
    """
    asset = distribution.asset
    if distribution.snapshot_id is not None:
        _snapshot_from_chain(asset, int(distribution.snapshot_id), snapshot)
        return distribution.snapshot_block
    client = gateway.client()
    token = gateway.checksum(asset.token_address)
    block = client.block_number()
    count = client.holder_count(token, block=block)
    page = max(1, settings.PAYOUT_SYNC_PAGE_SIZE)

    def rows() -> Iterator[tuple[str, int]]:
        for offset in range(0, count, page):
            holders = client.holders_page(token, offset, page, block=block)
            balances = client.balances_of(token, holders, block=block)
            yield from zip((gateway.normalize(holder) for holder in holders), balances, strict=True)

    snapshot.extend_unsorted(rows())
    return block


def _snapshot_from_chain(asset: Asset, snapshot_id: int, snapshot: HolderSnapshot) -> None:
    """Balances at the token's snapshot for every address that ever held it, page by page."""
    client = gateway.client()
    last = ""
    while True:
        page = list(
            AssetHolder.objects.filter(asset=asset, address__gt=last)
            .order_by("address")
            .values_list("address", flat=True)[:SNAPSHOT_PAGE]
        )
        if not page:
            return
        balances = client.balances_of(
            gateway.checksum(asset.token_address), [gateway.checksum(a) for a in page], snapshot_id=snapshot_id
        )
        snapshot.append_many(zip(page, balances, strict=True))
        last = page[-1]


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
    from chain.errors import ChainError
    from chain.services import estimate_gas

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
    if written == 0:
        distribution.transition(Status.FAILED)
        distribution.error = "no holder is owed a positive amount"
        distribution.finished_at = now
        fields += ["status", "error", "finished_at"]
    distribution.save(update_fields=fields)
    logger.info(
        "distribution planned distribution_id=%s holders=%s batches=%s batch_size=%s",
        distribution.id,
        written,
        len(batch_counts),
        size,
    )
    if written:
        distribution_key = str(distribution.id)
        transaction.on_commit(lambda: submit_batches_task.delay(distribution_key), robust=True)


def _fail_planning(distribution_id: uuid.UUID, message: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        distribution = Distribution.objects.select_for_update().get(pk=distribution_id)
        if distribution.status != Status.IN_PROGRESS or distribution.holders_count is not None:
            return
        distribution.transition(Status.FAILED)
        distribution.error = message
        distribution.finished_at = now
        distribution.save(update_fields=["status", "error", "finished_at", "updated_at"])
    logger.warning("distribution planning failed distribution_id=%s error=%s", distribution_id, message)


def distribution_submit_batches(*, distribution_id: uuid.UUID, limit: int = SUBMIT_CHUNK) -> int:
    """Hand up to `limit` PENDING batches to the chain lane; returns how many were submitted."""
    from chain.services import transaction_enqueue
    from payouts.services.confirmation import batch_roll_up, distribution_roll_up
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
            BatchPayout.Status.check_move(batch.status, BatchPayout.Status.IN_PROGRESS)
            batch.status = BatchPayout.Status.IN_PROGRESS
            batch.attempts = attempt
            batch.chain_batch_id = batch_hex
            batch.chain_transaction_id = chain_tx.id
            batch.tx_hash = ""
            batch.nonce = None
            batch.error = ""
            batch.submitted_at = now
            batch.save(
                update_fields=[
                    "status",
                    "attempts",
                    "chain_batch_id",
                    "chain_transaction_id",
                    "tx_hash",
                    "nonce",
                    "error",
                    "submitted_at",
                    "updated_at",
                ]
            )
            submitted += 1
        more = BatchPayout.objects.filter(distribution=distribution, status=BatchPayout.Status.PENDING).exists()
        if more and len(batches) == limit:  # the rest of a long list (fewer: another submitter holds them)
            transaction.on_commit(lambda: submit_batches_task.delay(str(distribution_id)), robust=True)
    logger.info("batches submitted distribution_id=%s count=%s more=%s", distribution_id, submitted, more)
    return submitted
