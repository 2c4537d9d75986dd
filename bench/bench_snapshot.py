"""Writing a distribution's holder payments: our code path vs a raw PostgreSQL COPY of the same rows.

Ours: stream the holder snapshot out of the holder table into the spooled snapshot, run the
largest-remainder split (four streaming passes), assign batches and COPY the payment rows in;
the baseline COPYs the very same, already computed rows. Both run in transactions that are rolled
back, in the same process and database. Prints the ratio; asserts nothing about time.

`make bench` runs it with 200,000 holders; `python -m bench.bench_snapshot 50000` picks another N.
"""

from __future__ import annotations

import sys
import time
import uuid

HOLDERS = 200_000
BATCH_SIZE = 100


class _Rollback(Exception):
    pass


def _prepare(holders: int) -> tuple[object, list[tuple[int, str, int, int]]]:
    from django.core.management import call_command
    from django.db import connection

    from payouts import allocation, gateway
    from payouts.models import Asset, AssetHolder, Distribution

    call_command("migrate", verbosity=0)
    Distribution.objects.filter(asset__name="bench").delete()
    Asset.objects.filter(name="bench").delete()
    asset = Asset.objects.create(
        name="bench",
        symbol="BNCH",
        token_address="0x" + "be" * 20,
        asset_type="EQUITY",
        payout_contract_address="0x" + "bf" * 20,
        payment_token_address="0x" + "bd" * 20,
    )
    balances = [(f"0x{i:040x}", 1 + (i * 7919) % 100_003) for i in range(1, holders + 1)]
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY {AssetHolder._meta.db_table} (asset_id, address, balance, balance_block, updated_at) FROM STDIN"
        ) as copy,
    ):
        for address, balance in balances:
            copy.write_row((asset.pk, address, balance, 0, "2025-01-01T00:00:00Z"))
    distribution_id = uuid.uuid4()
    distribution = Distribution.objects.create(
        id=distribution_id,
        asset=asset,
        subtype="IMMEDIATE",
        amount_type="FIXED",
        amount=10**15 + 7,
        computed_total=10**15 + 7,
        status="IN_PROGRESS",
        chain_distribution_id=gateway.chain_distribution_id(distribution_id),
    )
    total = sum(b for _, b in balances)
    rows = [
        (allocation.batch_number_of(position, BATCH_SIZE), address, balance, amount)
        for position, (address, balance, amount) in enumerate(
            allocation.split_pro_rata(total=10**15 + 7, rows=lambda: iter(balances), balance_sum=total)
        )
    ]
    return distribution, rows


def _ours(distribution: object) -> float:
    from django.db import transaction

    from payouts.models import AssetHolder, Distribution
    from payouts.services import execution
    from payouts.snapshot import HolderSnapshot

    assert isinstance(distribution, Distribution)
    started = time.perf_counter()
    try:
        with HolderSnapshot() as snapshot, transaction.atomic():
            # the holders as planning spools them (there read from the chain, here from the table)
            holders = AssetHolder.objects.filter(asset_id=distribution.asset_id, balance__gt=0).order_by("address")
            snapshot.append_many(
                (a, int(b)) for a, b in holders.values_list("address", "balance").iterator(chunk_size=5_000)
            )
            locked = (
                Distribution.objects.select_related("asset").select_for_update(of=("self",)).get(pk=distribution.pk)
            )
            execution._write_plan(locked, snapshot, total=int(distribution.amount or 0), size=BATCH_SIZE, block=None)
            elapsed = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        return elapsed


def _copy(distribution: object, rows: list[tuple[int, str, int, int]]) -> float:
    from django.db import connection, transaction

    from payouts.models import Distribution, HolderPayment

    assert isinstance(distribution, Distribution)
    columns = (
        "distribution_id, batch_number, holder_address, balance, amount, status, retry_count, last_error, "
        "tx_hash, updated_at"
    )
    started = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {HolderPayment._meta.db_table} ({columns}) FROM STDIN") as copy:
                for batch_number, address, balance, amount in rows:
                    copy.write_row(
                        (
                            distribution.pk,
                            batch_number,
                            address,
                            balance,
                            amount,
                            "PENDING",
                            0,
                            "",
                            "",
                            "2025-01-01T00:00:00Z",
                        )
                    )
            elapsed = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        return elapsed


def run(holders: int = HOLDERS) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        print("skipped: needs PostgreSQL (run through `make bench`)")
        return
    distribution, rows = _prepare(holders)
    copy_seconds = _copy(distribution, rows)
    ours_seconds = _ours(distribution)
    print(f"holders:            {holders:,}")
    print(f"raw COPY:           {copy_seconds:.2f} s ({holders / copy_seconds:,.0f} rows/s)")
    print(f"our path:           {ours_seconds:.2f} s ({holders / ours_seconds:,.0f} rows/s)")
    print(f"ratio ours / COPY:  {ours_seconds / copy_seconds:.2f}")


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    run(int(sys.argv[1]) if len(sys.argv) > 1 else HOLDERS)
