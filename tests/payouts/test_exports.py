"""The payments CSV of a distribution: the same bytes from the admin and the API, staff only, streamed
(a 100,000-row export is written a chunk at a time from a server-side cursor, never built in memory)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from chain.models import ChainTransaction
from payouts import exports
from payouts.bulk import write_holder_payments
from payouts.models import BatchPayout, Distribution, HolderPayment
from tests.payouts.factories import address, make_distribution

pytestmark = pytest.mark.django_db


def _chunks(response: Any) -> Iterable[bytes]:
    """The body of a streamed response, chunk by chunk as the server sends it."""
    assert response.streaming
    return cast(Iterable[bytes], response.streaming_content)


AT = datetime(2030, 5, 17, 9, 30, tzinfo=UTC)


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("exporter", password="exporter-pass-123"))
    return client


def _settled_distribution() -> Distribution:
    """Two holders in batch 0 (paid by a transaction mined in block 4321), one still pending in batch 1."""
    distribution = make_distribution(status=Distribution.Status.IN_PROGRESS, amount=5_000_000_000)
    mined = ChainTransaction.objects.create(
        intent_key="export-test", purpose="payout_batch", to=address(1), data="0x", block_number=4321
    )
    BatchPayout.objects.create(distribution=distribution, number=0, holders_count=2, chain_transaction_id=mined.pk)
    BatchPayout.objects.create(distribution=distribution, number=1, holders_count=1)
    paid = "0x" + "ab" * 32
    for batch, holder, amount, status, tx_hash in (
        (0, address(2), 3_750_000_000, HolderPayment.Status.SUCCESS, paid),
        (0, address(1), 1_249_999_999, HolderPayment.Status.FAILED, paid),
        (1, address(3), 1, HolderPayment.Status.PENDING, ""),
    ):
        HolderPayment.objects.create(
            distribution=distribution,
            batch_number=batch,
            holder_address=holder,
            balance=1,
            amount=amount,
            status=status,
            tx_hash=tx_hash,
            updated_at=AT,
        )
    return distribution


def test_the_admin_and_the_api_export_the_same_exact_csv(admin_client: Client, api_client: APIClient) -> None:
    # given
    distribution = _settled_distribution()
    paid = "0x" + "ab" * 32
    # when
    from_admin = admin_client.get(f"/admin/payouts/distribution/{distribution.pk}/payments.csv")
    from_api = api_client.get(f"/api/v1/distributions/{distribution.pk}/payments.csv")
    # then: batch then address order, amounts in USDC with every decimal, base units where it says so
    expected = (
        "holder,amount,symbol,amount_base_units,status,tx_hash,block,time\n"
        f"{address(1)},1249.999999,USDC,1249999999,FAILED,{paid},4321,2030-05-17T09:30:00+00:00\n"
        f"{address(2)},3750.000000,USDC,3750000000,SUCCESS,{paid},4321,2030-05-17T09:30:00+00:00\n"
        f"{address(3)},0.000001,USDC,1,PENDING,,,2030-05-17T09:30:00+00:00\n"
    )
    for response in (from_admin, from_api):
        assert response.status_code == 200
        assert response.streaming
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == f'attachment; filename="distribution-{distribution.pk}-payments.csv"'
        assert b"".join(_chunks(response)).decode() == expected


def test_the_admin_links_the_csv_and_exports_it_as_an_action(admin_client: Client) -> None:
    # given
    distribution = _settled_distribution()
    url = f"/admin/payouts/distribution/{distribution.pk}/payments.csv"
    # when
    page = admin_client.get(f"/admin/payouts/distribution/{distribution.pk}/change/")
    action = admin_client.post(
        "/admin/payouts/distribution/", {"action": "export_payments_csv", "_selected_action": [str(distribution.pk)]}
    )
    # then
    assert url in page.content.decode()
    assert b"".join(_chunks(action)).decode().count("\n") == 4


def test_the_export_is_for_staff_only(client: Client, anonymous_client: APIClient) -> None:
    # given a distribution, a user who is not staff, and read-only staff (who see everything)
    distribution = _settled_distribution()
    admin_url = f"/admin/payouts/distribution/{distribution.pk}/payments.csv"
    api_url = f"/api/v1/distributions/{distribution.pk}/payments.csv"
    # when / then
    assert client.get(admin_url).status_code == 302  # to the login page
    assert anonymous_client.get(api_url).status_code == 401
    anonymous_client.force_authenticate(User.objects.create_user("customer", password="customer-pass-123"))
    assert anonymous_client.get(api_url).status_code == 403
    client.force_login(User.objects.create_user("viewer", password="viewer-pass-123", is_staff=True))
    assert client.get(admin_url).status_code == 200
    assert client.get(f"/admin/payouts/distribution/{make_distribution().pk}x/payments.csv").status_code in (
        403,
        404,
    )


def test_an_unknown_distribution_is_a_404(api_client: APIClient, admin_client: Client) -> None:
    assert api_client.get("/api/v1/distributions/not-an-id/payments.csv").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert admin_client.get(f"/admin/payouts/distribution/{missing}/payments.csv").status_code == 404


ROWS = 100_000


def test_a_large_export_is_streamed_a_chunk_at_a_time_in_bounded_memory(api_client: APIClient) -> None:
    # given a distribution of 100,000 payments, written with COPY as planning writes them
    distribution = make_distribution(status=Distribution.Status.IN_PROGRESS, amount=ROWS * 1_000_000)
    write_holder_payments(
        distribution_id=distribution.pk,
        rows=((n // 500, address(n + 1), 1, 1_000_000) for n in range(ROWS)),
        now=timezone.now(),
    )
    # when the response is read chunk by chunk, keeping only sizes
    tracemalloc.start()
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(f"/api/v1/distributions/{distribution.pk}/payments.csv")
        chunks = iter(_chunks(response))
        header, first = next(chunks), next(chunks)
        total_bytes, lines = len(header) + len(first), header.count(b"\n") + first.count(b"\n")
        for chunk in chunks:
            total_bytes += len(chunk)
            lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    # then the first rows came as one chunk of the cursor, not as the whole file
    assert header.startswith(b"holder,amount,")
    assert first.count(b"\n") == exports.CHUNK_ROWS
    # every row came out, from one query (a server-side cursor with the block as a subquery, no query per row)
    assert lines == ROWS + 1
    assert len([q for q in queries.captured_queries if "payouts_holderpayment" in q["sql"]]) == 1
    # and the memory the whole request took stayed a fraction of the output (one chunk's rows and text, and
    # the request itself: a file built whole would hold at least all of its bytes)
    assert total_bytes > 10_000_000
    assert peak < total_bytes // 3, (peak, total_bytes)
