"""Planning on PostgreSQL: snapshot -> amounts -> COPY of payments -> batch rows, around batch edges."""

from __future__ import annotations

import pytest
from django.db import transaction

from payouts.models import AssetHolder, BatchPayout, Distribution, HolderPayment
from payouts.services import execution
from payouts.snapshot import HolderSnapshot
from tests.payouts.factories import address, make_asset, make_distribution

pytestmark = pytest.mark.django_db

SIZE = 7


def _plan(distribution: Distribution, total: int) -> Distribution:
    with HolderSnapshot() as snapshot, transaction.atomic():
        execution._take_snapshot(distribution, snapshot)
        locked = Distribution.objects.select_related("asset").select_for_update(of=("self",)).get(pk=distribution.pk)
        execution._write_plan(locked, snapshot, total=total, size=SIZE)
    return Distribution.objects.get(pk=distribution.pk)


@pytest.mark.parametrize("count", [1, SIZE - 1, SIZE, SIZE + 1, 2 * SIZE + 3, 100])
def test_every_holder_is_in_exactly_one_batch_and_the_parts_sum_to_the_total(count: int) -> None:
    # given `count` holders (plus two with nothing) and a distribution of an awkward total
    asset = make_asset()
    AssetHolder.objects.bulk_create(
        [AssetHolder(asset=asset, address=address(0xF000 + i), balance=1 + (i * 31) % 17) for i in range(count)]
        + [AssetHolder(asset=asset, address=address(0xFF000 + i), balance=0) for i in range(2)]
    )
    total = 10_007 * count + 3
    distribution = make_distribution(
        asset=asset, status=Distribution.Status.IN_PROGRESS, amount=total, computed_total=total
    )
    # when planned
    planned = _plan(distribution, total)
    # then
    payments = list(
        HolderPayment.objects.filter(distribution=planned)
        .order_by("holder_address")
        .values_list("batch_number", "amount")
    )
    numbers = [number for number, _ in payments]
    assert len(payments) == count == planned.holders_count
    assert sum(amount for _, amount in payments) == total
    assert numbers == sorted(numbers)
    batches = list(
        BatchPayout.objects.filter(distribution=planned).order_by("number").values_list("number", "holders_count")
    )
    assert batches == [(n, numbers.count(n)) for n in range(1, len(batches) + 1)]
    assert all(size == SIZE for _, size in batches[:-1])
    assert 0 < batches[-1][1] <= SIZE
    assert planned.batches_count == len(batches) == -(-count // SIZE)


def test_a_distribution_with_no_holders_fails_with_a_reason() -> None:
    # given an asset whose holders all hold nothing
    asset = make_asset()
    AssetHolder.objects.create(asset=asset, address=address(0xF001), balance=0)
    distribution = make_distribution(asset=asset, status=Distribution.Status.IN_PROGRESS, amount=5, computed_total=5)
    # when planned: nothing to split (no chain call is needed to find out)
    execution.distribution_plan(distribution_id=distribution.pk)
    # then
    distribution.refresh_from_db()
    assert (distribution.status, distribution.error) == ("FAILED", "no holder has a positive balance at the snapshot")
    assert HolderPayment.objects.filter(distribution=distribution).count() == 0
