"""Applying on-chain results: idempotent, race-safe counters, stale failures never undo a retry."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from chain.events import DecodedEvent
from payouts import gateway, services
from payouts.models import Asset, BatchPayout, Distribution, HolderPayment
from payouts.services.confirmation import payout_results_apply
from payouts.services.execution import distribution_submit_batches
from tests.payouts.factories import address, make_distribution

pytestmark = pytest.mark.django_db(transaction=True)

BATCH_HEX = "0x" + "ab" * 32


def _planned(holders: int, **fields: Any) -> Distribution:
    distribution = make_distribution(
        status=Distribution.Status.IN_PROGRESS, holders_count=holders, batches_count=1, **fields
    )
    HolderPayment.objects.bulk_create(
        HolderPayment(
            distribution=distribution,
            batch_number=1,
            holder_address=address(0xE000 + i),
            balance=1,
            amount=10 + i,
            updated_at=timezone.now(),
        )
        for i in range(holders)
    )
    BatchPayout.objects.create(
        distribution=distribution,
        number=1,
        holders_count=holders,
        status=BatchPayout.Status.IN_PROGRESS,
        attempts=1,
        chain_batch_id=BATCH_HEX,
    )
    return distribution


def _event(name: str, index: int, distribution: Distribution, **args: object) -> DecodedEvent:
    return DecodedEvent(
        event_name=name,
        args={
            "distributionId": gateway.to_bytes32(distribution.chain_distribution_id),
            "batchId": bytes.fromhex("ab" * 32),
            **args,
        },
        contract_address=gateway.checksum(distribution.asset.payout_contract_address),
        tx_hash="0x" + "22" * 32,
        log_index=index,
        block_number=7,
        block_timestamp=None,
    )


def test_the_same_results_applied_twice_at_the_same_moment_count_once() -> None:
    # given 40 pending payments and the events paying all of them
    distribution = _planned(40)
    events = [
        _event("HolderPaid", i, distribution, holder=gateway.checksum(address(0xE000 + i)), amount=10 + i)
        for i in range(40)
    ]
    # when the receipt path and the listener path apply them concurrently
    barrier = threading.Barrier(2)

    def apply() -> None:
        barrier.wait()
        try:
            payout_results_apply(events=events, tx_hash="0x" + "22" * 32)
        finally:
            connection.close()

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then every counter moved once
    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid_count, distribution.failed_count) == ("COMPLETED", 40, 0)
    assert distribution.paid_amount == sum(10 + i for i in range(40))
    assert BatchPayout.objects.get(distribution=distribution).status == "COMPLETED"


def test_a_late_success_after_a_failure_wins_and_a_stale_failure_never_undoes_a_retry() -> None:
    # given two holders: one failed for lack of funds, one paid
    distribution = _planned(2)
    first, second = (gateway.checksum(address(0xE000 + i)) for i in range(2))
    payout_results_apply(
        events=[
            _event("HolderPaymentFailed", 0, distribution, holder=first, amount=10, reason=1),
            _event("HolderPaid", 1, distribution, holder=second, amount=11),
            _event("PayoutCompleted", 2, distribution, successfulPayments=1, failedPayments=1),
        ]
    )
    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid_count, distribution.failed_count) == ("FAILED", 1, 1)
    # when the batch is retried (new on-chain id) and the OLD failure is seen again, late
    BatchPayout.objects.filter(distribution=distribution).update(chain_batch_id="0x" + "cd" * 32)
    HolderPayment.objects.filter(holder_address=gateway.normalize(first)).update(status="RETRYING")
    Distribution.objects.filter(pk=distribution.pk).update(status="IN_PROGRESS", failed_count=0)
    payout_results_apply(events=[_event("HolderPaymentFailed", 0, distribution, holder=first, amount=10, reason=1)])
    # then the retrying holder is still retrying
    assert HolderPayment.objects.get(holder_address=gateway.normalize(first)).status == "RETRYING"
    # when the retry pays it
    payout_results_apply(events=[_event("HolderPaid", 5, distribution, holder=first, amount=10)])
    # then the distribution is complete, and an "already paid" notice changes nothing
    payout_results_apply(events=[_event("HolderPaymentFailed", 6, distribution, holder=first, amount=10, reason=2)])
    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid_count, distribution.failed_count, distribution.paid_amount) == (
        "COMPLETED",
        2,
        0,
        21,
    )


def test_a_pending_batch_whose_holders_were_all_paid_meanwhile_is_settled_not_resubmitted_forever(
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given two batches: the first put back to PENDING for a retry, whose holders a late confirmation
    # then paid; the second still in flight
    distribution = _planned(3)
    third = gateway.normalize(address(0xE002))
    HolderPayment.objects.filter(distribution=distribution, holder_address=third).update(batch_number=2)
    BatchPayout.objects.filter(distribution=distribution).update(status=BatchPayout.Status.PENDING, holders_count=2)
    BatchPayout.objects.create(
        distribution=distribution, number=2, holders_count=1, status=BatchPayout.Status.IN_PROGRESS, attempts=1
    )
    Distribution.objects.filter(pk=distribution.pk).update(batches_count=2)
    payout_results_apply(
        events=[
            _event("HolderPaid", i, distribution, holder=gateway.checksum(address(0xE000 + i)), amount=10 + i)
            for i in range(2)
        ]
    )
    # when the submitter looks at the distribution
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        submitted = distribution_submit_batches(distribution_id=distribution.pk)
    # then nothing is sent, the paid batch is settled, and nothing re-enqueues the submitter
    assert submitted == 0
    assert BatchPayout.objects.get(distribution=distribution, number=1).status == BatchPayout.Status.COMPLETED
    assert enqueued == []


def test_a_late_failure_from_an_earlier_attempt_never_fails_a_holder_waiting_for_its_retry(
    funded_asset: Asset,
) -> None:
    # given a holder whose payment failed, and the operator's retry (it waits to be re-sent)
    distribution = _planned(2, asset=funded_asset)
    first, second = (gateway.checksum(address(0xE000 + i)) for i in range(2))
    failure = _event("HolderPaymentFailed", 0, distribution, holder=first, amount=10, reason=1)
    payout_results_apply(events=[failure, _event("HolderPaid", 1, distribution, holder=second, amount=11)])
    payout_results_apply(events=[_event("PayoutCompleted", 2, distribution, successfulPayments=1, failedPayments=1)])
    assert Distribution.objects.get(pk=distribution.pk).status == Distribution.Status.FAILED
    services.distribution_retry(distribution_id=distribution.pk)
    # when the earlier attempt's failure is seen again, late (the listener catching up)
    payout_results_apply(events=[failure])
    # then the holder still waits for its retry, and the counters did not move
    payment = HolderPayment.objects.get(distribution=distribution, holder_address=gateway.normalize(first))
    assert (payment.status, payment.retry_count) == ("RETRYING", 1)
    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid_count, distribution.failed_count) == ("IN_PROGRESS", 1, 0)


def test_the_listener_page_and_the_receipt_path_racing_on_one_batch_never_deadlock() -> None:
    # given rounds of a planned batch of 6 holders, paid on chain
    errors: list[str] = []
    for _ in range(8):
        distribution = _planned(6)
        events = [
            _event("HolderPaid", i, distribution, holder=gateway.checksum(address(0xE000 + i)), amount=10 + i)
            for i in range(6)
        ]
        barrier = threading.Barrier(2)

        def listener_page(events: list[DecodedEvent] = events, barrier: threading.Barrier = barrier) -> None:
            # one page: every event in its own processor call, in log order (here: not address order)
            barrier.wait()
            try:
                with transaction.atomic():
                    for event in reversed(events):
                        payout_results_apply(events=[event], tx_hash="0x" + "22" * 32)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                connection.close()

        def receipt_path(events: list[DecodedEvent] = events, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                payout_results_apply(events=events, tx_hash="0x" + "22" * 32)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                connection.close()

        # when the listener and the receipt path apply the same results at the same moment
        threads = [threading.Thread(target=listener_page), threading.Thread(target=receipt_path)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # then both went through, and every holder counts once
        distribution.refresh_from_db()
        assert (distribution.status, distribution.paid_count) == ("COMPLETED", 6)
    assert errors == []
