"""Every stateful model's table, walked whole: every allowed move works, every other is refused and
changes nothing; for a single row through the model's own methods, for many rows through the claim."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import models
from django.utils import timezone

from agreements.models import Agreement, AgreementPayment, InboundBlockchainEvent, WebhookDelivery
from agreements.services.inbound import EVENTS
from agreements.services.outbound import DELIVERIES
from chain.models import ChainEvent, ChainTransaction, EventListener
from config.states import IllegalTransition, StateMachine
from payouts.models import Asset, BatchPayout, Distribution, FundsWithdrawal, HolderPayment
from tests.agreements.factories import AgreementFactory, AgreementPaymentFactory
from tests.payouts.factories import address, make_asset, make_distribution

pytestmark = pytest.mark.django_db

Row = Any  # a model instance of the machine's model


@dataclass(frozen=True)
class Machine:
    """One status column: how to store a row in a given state, and the model's way to each state."""

    name: str
    model: type[models.Model]
    moves: StateMachine
    make: Callable[[str], Row]
    # target state -> the model's method (or service bookkeeping) that moves one row there
    mark: dict[str, Callable[[Row], None]]
    # targets whose method accepts a row already there (it refreshes, it does not move)
    stays: frozenset[str] = field(default_factory=frozenset)

    def __str__(self) -> str:
        return self.name


def _chain_transaction(status: str) -> ChainTransaction:
    return ChainTransaction.objects.create(
        intent_key=uuid.uuid4().hex, purpose="test", to="0x" + "11" * 20, data="0x", status=status
    )


def _chain_event(status: str) -> ChainEvent:
    listener = EventListener.objects.create(
        name=uuid.uuid4().hex, contract_address="0x" + "22" * 20, abi_name="PayoutContract"
    )
    return ChainEvent.objects.create(
        listener=listener,
        tx_hash="0x" + uuid.uuid4().hex * 2,
        log_index=0,
        contract_address=listener.contract_address,
        block_number=1,
        status=status,
    )


def _batch(status: str) -> BatchPayout:
    return BatchPayout.objects.create(distribution=make_distribution(), number=1, holders_count=2, status=status)


def _payment(status: str) -> HolderPayment:
    return HolderPayment.objects.create(
        distribution=make_distribution(),
        batch_number=1,
        holder_address=address(1),
        balance=1,
        amount=1,
        status=status,
        updated_at=timezone.now(),
    )


def _delivery(status: str) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        agreement=AgreementFactory.create(), event_type="agreement.before_progress", payload={}, status=status
    )


def _inbound(status: str) -> InboundBlockchainEvent:
    return InboundBlockchainEvent.objects.create(
        webhook_id=uuid.uuid4().hex,
        body_sha256="0" * 64,
        type=InboundBlockchainEvent.Type.CREATE,
        agreement_id=uuid.uuid4(),
        tx_hash="0x" + uuid.uuid4().hex,
        payload={},
        status=status,
    )


def _transition(to: str) -> Callable[[Row], None]:
    def move(row: Row) -> None:
        row.transition(to)

    return move


def _gave_up(outbox: Any) -> Callable[[Row], None]:
    def fail(row: Row) -> None:
        outbox.count_failure(row, error="gone", now=timezone.now(), give_up=True)
        row.save()

    return fail


CT, CE = ChainTransaction.Status, ChainEvent.Status
D, B, W = Distribution.Status, BatchPayout.Status, FundsWithdrawal.Status
SYNC, PAUSE = Asset.SyncStatus, Asset.PauseState
AS, AP = Agreement.Status, AgreementPayment.Status
WD, IE = WebhookDelivery.Status, InboundBlockchainEvent.Status

MACHINES = [
    Machine(
        "ChainTransaction",
        ChainTransaction,
        ChainTransaction.MOVES,
        _chain_transaction,
        {to: _transition(to) for to in CT.values},
        stays=frozenset(CT.values),  # `transition` to the state it is in saves the given fields
    ),
    Machine(
        "ChainEvent",
        ChainEvent,
        ChainEvent.MOVES,
        _chain_event,
        {
            CE.PROCESSED: lambda row: row.mark_processed(now=timezone.now()),
            CE.FAILED: lambda row: row.mark_failed("ValueError: no"),
            CE.UNDECODABLE: lambda row: row.mark_undecodable("unknown topic"),
            CE.NO_PROCESSOR: lambda row: row.mark_no_processor(event_name="Paid", args={}),
        },
    ),
    Machine(
        "Distribution",
        Distribution,
        Distribution.MOVES,
        lambda status: make_distribution(status=status),
        {
            D.IN_PROGRESS: lambda row: row.mark_in_progress(),
            D.FAILED: lambda row: row.mark_failed(error="no", now=timezone.now()),
            D.CANCELLED: lambda row: row.mark_cancelled(reason="no", now=timezone.now()),
            D.SKIPPED: lambda row: row.mark_skipped(reason="missed", now=timezone.now()),
        },
    ),
    Machine(
        "BatchPayout",
        BatchPayout,
        BatchPayout.MOVES,
        _batch,
        {
            B.IN_PROGRESS: lambda row: row.mark_in_progress(
                attempt=1, chain_batch_id="0x01", chain_transaction_id=uuid.uuid4(), now=timezone.now()
            ),
            B.COMPLETED: lambda row: row.mark_settled(paid=2, failed=0),
            B.PARTIALLY_COMPLETED: lambda row: row.mark_settled(paid=1, failed=1),
            B.FAILED: lambda row: row.mark_settled(paid=0, failed=2),
        },
        stays=frozenset({B.COMPLETED, B.PARTIALLY_COMPLETED, B.FAILED}),  # rolled up again: counts only
    ),
    Machine("HolderPayment", HolderPayment, HolderPayment.MOVES, _payment, {}),  # moved in bulk only
    Machine(
        "FundsWithdrawal",
        FundsWithdrawal,
        FundsWithdrawal.MOVES,
        lambda status: FundsWithdrawal.objects.create(
            asset=make_asset(), to_address=address(1), amount=1, status=status
        ),
        {
            W.CONFIRMED: lambda row: row.mark_confirmed(tx_hash="0x" + "ab" * 32, now=timezone.now()),
            W.FAILED: lambda row: row.mark_failed(error="reverted", now=timezone.now()),
        },
    ),
    Machine(
        "Asset.sync_status",
        Asset,
        Asset.SYNC_MOVES,
        lambda status: make_asset(sync_status=status),
        {SYNC.SYNCING: lambda row: row.mark_syncing(now=timezone.now())},
    ),
    Machine(
        "Asset.pause_state",
        Asset,
        Asset.PAUSE_MOVES,
        lambda state: make_asset(pause_state=state, is_paused=state != PAUSE.ACTIVE),
        {
            PAUSE.PAUSING: lambda row: row.mark_pausing(),
            PAUSE.UNPAUSING: lambda row: row.mark_unpausing(),
            PAUSE.PAUSED: lambda row: row.mark_paused(),
            PAUSE.ACTIVE: lambda row: row.mark_active(),
        },
    ),
    Machine(
        "Agreement",
        Agreement,
        Agreement.MOVES,
        lambda status: AgreementFactory.create(status=status),
        {to: _transition(to) for to in AS.values},
    ),
    Machine(
        "AgreementPayment",
        AgreementPayment,
        AgreementPayment.MOVES,
        lambda status: AgreementPaymentFactory.create(status=status),
        {
            AP.PAID: lambda row: row.mark_paid(),
            AP.CANCELLED: lambda row: row.mark_cancelled(reason="no longer due"),
        },
    ),
    Machine(
        "WebhookDelivery",
        WebhookDelivery,
        WebhookDelivery.MOVES,
        _delivery,
        {
            WD.SUCCESS: lambda row: row.mark_success(now=timezone.now()),
            WD.FAILED: _gave_up(DELIVERIES),
            WD.PENDING: DELIVERIES.reopen,
        },
    ),
    Machine(
        "InboundBlockchainEvent",
        InboundBlockchainEvent,
        InboundBlockchainEvent.MOVES,
        _inbound,
        {
            IE.PROCESSED: lambda row: row.mark_processed(now=timezone.now()),
            IE.FAILED: _gave_up(EVENTS),
            IE.RECEIVED: EVENTS.reopen,
        },
    ),
]

ONE_ROW = [
    pytest.param(machine, old, new, id=f"{machine}:{old}->{new}")
    for machine in MACHINES
    for old, new in itertools.product(sorted(machine.moves.states), sorted(machine.mark))
]
MANY_ROWS = [
    pytest.param(machine, new, id=f"{machine}:->{new}") for machine in MACHINES for new in sorted(machine.moves.states)
]


def _state(machine: Machine, row: models.Model) -> str:
    row.refresh_from_db()
    return str(getattr(row, machine.moves.field))


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_the_table_has_every_choice_of_its_column_and_nothing_else(machine: Machine) -> None:
    column = machine.model._meta.get_field(machine.moves.field)
    assert isinstance(column, models.CharField)
    assert machine.moves.states == {str(value) for value, _ in column.choices or []}


@pytest.mark.parametrize(("machine", "old", "new"), ONE_ROW)
def test_one_row_moves_only_as_its_table_allows(machine: Machine, old: str, new: str) -> None:
    # given
    row = machine.make(old)
    allowed = machine.moves.allows(old, new) or (old == new and new in machine.stays)
    # when / then
    if allowed:
        machine.mark[new](row)
        assert _state(machine, row) == new
    else:
        with pytest.raises(IllegalTransition, match=f"from {old} to {new}"):
            machine.mark[new](row)
        assert _state(machine, row) == old


@pytest.mark.parametrize(("machine", "new"), MANY_ROWS)
def test_a_claim_moves_exactly_the_rows_whose_state_may_move(machine: Machine, new: str) -> None:
    # given: one row in every state
    rows = {old: machine.make(old) for old in sorted(machine.moves.states)}
    queryset = machine.model._default_manager.filter(pk__in=[row.pk for row in rows.values()])
    sources = machine.moves.sources(new)
    # when
    if not sources:
        with pytest.raises(IllegalTransition):
            machine.moves.claim(queryset, new)
        moved = 0
    else:
        moved = machine.moves.claim(queryset, new)
    # then
    assert moved == len(sources)
    for old, row in rows.items():
        assert _state(machine, row) == (new if old in sources else old), f"{old} -> {new}"


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_a_claim_limited_to_some_sources_refuses_a_source_the_table_does_not_allow(machine: Machine) -> None:
    states = sorted(machine.moves.states)
    refused = [(old, new) for old, new in itertools.product(states, states) if not machine.moves.allows(old, new)]
    for old, new in refused:
        with pytest.raises(IllegalTransition):
            machine.moves.claim(machine.model._default_manager.all(), new, sources=[old])


def test_the_coupled_fields_move_with_the_status() -> None:
    # given
    distribution = make_distribution(status=D.IN_PROGRESS)
    asset = make_asset()
    withdrawal = FundsWithdrawal.objects.create(asset=asset, to_address=address(1), amount=1)
    # when
    distribution.mark_failed(error="no holder is owed a positive amount", now=timezone.now())
    asset.mark_pausing()
    withdrawal.mark_failed(error="reverted", now=timezone.now())
    # then
    distribution.refresh_from_db()
    asset.refresh_from_db()
    withdrawal.refresh_from_db()
    assert (distribution.status, distribution.error) == (D.FAILED, "no holder is owed a positive amount")
    assert distribution.finished_at is not None
    assert (asset.pause_state, asset.is_paused, asset.pause_generation) == (PAUSE.PAUSING, True, 1)
    assert (withdrawal.status, withdrawal.error) == (W.FAILED, "reverted")
    assert withdrawal.finished_at is not None
