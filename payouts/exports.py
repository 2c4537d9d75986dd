"""CSV exports for operators, streamed: a distribution's payments, one row per holder.

The rows are read through a server-side cursor (`QuerySet.iterator(chunk_size=...)`) inside one
transaction (so PostgreSQL streams the cursor instead of materialising it WITH HOLD) and written
out a chunk at a time: a 1,000,000-holder distribution never sits in memory, and the first bytes
leave before the last row is read. The admin and the API serve the same bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.http import StreamingHttpResponse

from chain.models import ChainTransaction
from payouts.models import BatchPayout, Distribution, HolderPayment
from payouts.units import display_units

CHUNK_ROWS = 2_000

HEADER = ("holder", "amount", "symbol", "amount_base_units", "status", "tx_hash", "block", "time")


def payments_csv(distribution: Distribution, *, chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
    """The header, then the payments in batch and address order, `chunk_rows` rows per yielded string.

    `amount` is in payment-token units with every decimal the token has and no thousands separator
    (so a spreadsheet reads it as a number); `amount_base_units` is the integer the contract paid;
    `block` is the block of the batch transaction that settled it (empty until one did); `time` is
    when the payment reached its status (UTC, ISO 8601).
    """
    asset = distribution.asset
    decimals, symbol = asset.payment_token_decimals, asset.payment_token_symbol
    batch_transaction = BatchPayout.objects.filter(
        distribution_id=OuterRef("distribution_id"), number=OuterRef("batch_number")
    ).values("chain_transaction_id")[:1]
    block = ChainTransaction.objects.filter(id=OuterRef("batch_transaction")).values("block_number")[:1]
    rows = (
        HolderPayment.objects.filter(distribution_id=distribution.pk)
        .order_by("batch_number", "holder_address")
        .annotate(batch_transaction=Subquery(batch_transaction))
        .annotate(block=Subquery(block))
        .values_list("holder_address", "amount", "status", "tx_hash", "block", "updated_at")
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    yield _drain(buffer)
    with transaction.atomic():  # a cursor without WITH HOLD: PostgreSQL streams it
        written = 0
        for holder, amount, status, tx_hash, block_number, updated_at in rows.iterator(chunk_size=chunk_rows):
            settled, base_units = bool(tx_hash), int(amount)
            writer.writerow(
                (
                    holder,
                    display_units(base_units, decimals, separators=False),
                    symbol,
                    base_units,
                    status,
                    tx_hash,
                    block_number if settled and block_number is not None else "",
                    updated_at.isoformat(),
                )
            )
            written += 1
            if written % chunk_rows == 0:
                yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def payments_csv_response(distribution: Distribution) -> StreamingHttpResponse:
    response = StreamingHttpResponse(payments_csv(distribution), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="distribution-{distribution.pk}-payments.csv"'
    response["Cache-Control"] = "no-store"
    return response
