"""Bulk writes of holder payments and holder balances: COPY on PostgreSQL, chunked inserts elsewhere.

Only the storage differs by database; the rows (and so the money) come from one computation.
Both writers stream: rows are consumed from an iterator and never collected in a list.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection

from payouts.models import AssetHolder, HolderPayment

CHUNK = 5_000

# (batch_number, holder_address, balance, amount)
PaymentRow = tuple[int, str, int, int]


def _chunks(rows: Iterable[PaymentRow], size: int) -> Iterator[list[PaymentRow]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def write_holder_payments(*, distribution_id: UUID, rows: Iterable[PaymentRow], now: datetime) -> int:
    """Insert PENDING holder payments; returns how many. Call inside the caller's transaction."""
    if connection.vendor == "postgresql":
        return _copy_holder_payments(distribution_id, rows, now)
    written = 0
    for chunk in _chunks(rows, CHUNK):
        HolderPayment.objects.bulk_create(
            [
                HolderPayment(
                    distribution_id=distribution_id,
                    batch_number=batch_number,
                    holder_address=address,
                    balance=balance,
                    amount=amount,
                    updated_at=now,
                )
                for batch_number, address, balance, amount in chunk
            ],
            batch_size=500,
        )
        written += len(chunk)
    return written


def _copy_holder_payments(distribution_id: UUID, rows: Iterable[PaymentRow], now: datetime) -> int:
    table = HolderPayment._meta.db_table
    columns = (
        "distribution_id, batch_number, holder_address, balance, amount, status, retry_count, last_error, "
        "tx_hash, updated_at"
    )
    pending = HolderPayment.Status.PENDING.value
    written = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for batch_number, address, balance, amount in rows:
                copy.write_row((distribution_id, batch_number, address, balance, amount, pending, 0, "", "", now))
                written += 1
    return written


def upsert_holder_balances(*, asset_id: UUID, rows: list[tuple[str, int]], block: int, seen_at: datetime) -> None:
    """Insert or update one page of holder balances (a full re-sync); a balance read at an older
    block never overwrites a newer one. One statement on PostgreSQL and SQLite alike."""
    if not rows:
        return
    postgres = connection.vendor == "postgresql"
    table = AssetHolder._meta.db_table
    greatest = "GREATEST" if postgres else "MAX"
    cast = "::numeric" if postgres else ""
    values = ", ".join([f"(%s, %s, %s{cast}, %s, %s, %s)"] * len(rows))
    asset_param = asset_id if postgres else asset_id.hex  # SQLite keeps UUIDs as 32 hex characters
    seen_param = connection.ops.adapt_datetimefield_value(seen_at)  # as the ORM stores it, for comparisons
    params: list[Any] = []
    for address, balance in rows:
        params.extend([asset_param, address, Decimal(balance), block, seen_param, seen_param])
    sql = (
        f"INSERT INTO {table} (asset_id, address, balance, balance_block, last_seen_sync_at, updated_at) "  # noqa: S608
        f"VALUES {values} ON CONFLICT (asset_id, address) DO UPDATE SET "
        f"balance = CASE WHEN excluded.balance_block >= {table}.balance_block THEN excluded.balance "
        f"ELSE {table}.balance END, "
        f"balance_block = {greatest}({table}.balance_block, excluded.balance_block), "
        "last_seen_sync_at = excluded.last_seen_sync_at, updated_at = excluded.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
