"""Planning on anvil and PostgreSQL: holders read from the chain -> amounts -> COPY of payments -> batch
rows, around batch edges."""

from __future__ import annotations

import pytest

from payouts import services
from payouts.models import BatchPayout, Distribution, HolderPayment
from tests.fixtures.payouts import ImportedAssetFactory
from tests.payouts.factories import make_distribution

pytestmark = pytest.mark.django_db

SIZE = 7


@pytest.mark.chain
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", [1, SIZE - 1, SIZE, SIZE + 1, 2 * SIZE + 3, 100])
def test_every_holder_is_in_exactly_one_batch_and_the_parts_sum_to_the_total(
    count: int, imported_asset_factory: ImportedAssetFactory
) -> None:
    # given `count` holders and a started distribution of an awkward total, in batches of SIZE
    total = 10_007 * count + 3
    asset = imported_asset_factory(
        balances=[1 + (i * 31) % 17 for i in range(count)], funding=total, salt=f"edges{count}", sync=None
    ).asset
    distribution = make_distribution(
        asset=asset, status=Distribution.Status.IN_PROGRESS, amount=total, computed_total=total, batch_size=SIZE
    )
    # when planned
    services.distribution_plan(distribution_id=distribution.pk)
    planned = Distribution.objects.get(pk=distribution.pk)
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


@pytest.mark.chain
@pytest.mark.django_db(transaction=True)
def test_a_distribution_with_no_holders_fails_with_a_reason(imported_asset_factory: ImportedAssetFactory) -> None:
    # given an asset nobody holds
    asset = imported_asset_factory(balances=[], funding=10**9, salt="empty", sync=None).asset
    distribution = make_distribution(asset=asset, status=Distribution.Status.IN_PROGRESS, amount=5, computed_total=5)
    # when planned: nothing to split
    services.distribution_plan(distribution_id=distribution.pk)
    # then
    distribution.refresh_from_db()
    assert (distribution.status, distribution.error) == ("FAILED", "no holder has a positive balance at the snapshot")
    assert HolderPayment.objects.filter(distribution=distribution).count() == 0
