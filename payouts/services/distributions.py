"""Distribution lifecycle before execution: create, cancel, start (the exactly-once claim).

`distribution_cancel` cancels one SCHEDULED occurrence (a series goes on: its next occurrence is
scheduled at its own time) or, with scope `series`, every SCHEDULED occurrence of a series for good.

`distribution_start` is the only way into IN_PROGRESS from SCHEDULED: a conditional
`UPDATE ... WHERE status='SCHEDULED'` whose row count says who won, so two triggers at the same
moment (operator + beat, two operators) produce one execution. Before it, with the asset row locked
(every start of one payout contract is serialised), the funds check refuses a distribution the
contract cannot pay in full (`payouts.services.funding`). The winner also creates the next
occurrence of a recurring or automated series, in the same transaction, and enqueues planning after
commit. `build_occurrence` gives any occurrence of a series with the series' terms (the catch-up of
`catch_up.py` writes missed ones with it).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from chain.fields import UINT256_MAX
from config.enqueue import publish_on_commit
from config.errors import Conflict, InvalidInput, NotFound
from payouts import gateway
from payouts.models import Asset, Distribution
from payouts.recurrence import DEFAULT_TIME_ZONE, known_time_zone, occurrence_time, wall_clock_text
from payouts.services.funding import FundsRead, funds_read, funds_require, planned_need

logger = logging.getLogger(__name__)

Status = Distribution.Status
CancelScope = Distribution.CancelScope


def distribution_create(
    *,
    asset_id: uuid.UUID,
    subtype: str,
    amount_type: str,
    amount: int | None = None,
    percentage_bps: int | None = None,
    amount_per_token: int | None = None,
    distribution_type: str = Distribution.Type.PAYOUT,
    concept: str = "",
    scheduled_at: datetime | None = None,
    recurrence: str = "",
    catch_up: str | None = None,
    time_zone: str | None = None,
) -> Distribution:
    """Create a payout (or bond cash-out); IMMEDIATE ones start at once.

    `catch_up` (RECURRING only, default latest) is the series' policy for missed occurrences;
    `time_zone` (RECURRING only, an IANA name, default UTC) the zone whose wall clock it keeps.
    """
    now = timezone.now()
    _check_shape(
        distribution_type=distribution_type,
        subtype=subtype,
        amount_type=amount_type,
        amount=amount,
        percentage_bps=percentage_bps,
        amount_per_token=amount_per_token,
        scheduled_at=scheduled_at,
        recurrence=recurrence,
        catch_up=catch_up,
        time_zone=time_zone,
        now=now,
    )
    read = None
    if subtype == Distribution.Subtype.IMMEDIATE:
        unlocked = Asset.objects.filter(pk=asset_id).first()
        read = funds_for_start(unlocked) if unlocked is not None else None
    with transaction.atomic():
        asset = Asset.objects.select_for_update().filter(pk=asset_id).first()
        if asset is None:
            raise NotFound("asset not found")
        if asset.is_paused:
            raise Conflict("the asset is paused: unpause it before creating distributions")
        if not asset.payout_contract_address:
            raise Conflict("the asset has no payout contract yet: wait for its sync to finish")
        if distribution_type == Distribution.Type.BOND_CASH_OUT and not asset.is_bond:
            raise InvalidInput("distribution_type", "only bonds can be cashed out")
        distribution_id = uuid.uuid4()
        series = subtype in (Distribution.Subtype.RECURRING, Distribution.Subtype.AUTOMATED)
        distribution = Distribution.objects.create(
            id=distribution_id,
            asset=asset,
            distribution_type=distribution_type,
            subtype=subtype,
            amount_type=amount_type,
            amount=amount,
            percentage_bps=percentage_bps,
            amount_per_token=amount_per_token,
            computed_total=amount if amount_type == Distribution.AmountType.FIXED else None,
            concept=concept,
            scheduled_at=now if subtype == Distribution.Subtype.IMMEDIATE else scheduled_at,
            recurrence=recurrence,
            series_id=uuid.uuid4() if series else None,
            recurrence_anchor=scheduled_at if subtype == Distribution.Subtype.RECURRING else None,
            catch_up=catch_up or Distribution.CatchUp.LATEST,
            time_zone=time_zone or DEFAULT_TIME_ZONE,
            chain_distribution_id=gateway.chain_distribution_id(distribution_id),
        )
        logger.info("distribution created distribution_id=%s subtype=%s", distribution.id, subtype)
        if subtype == Distribution.Subtype.IMMEDIATE:
            return distribution_claim(distribution.id, now=now, read=read)
    return distribution


def _check_shape(
    *,
    distribution_type: str,
    subtype: str,
    amount_type: str,
    amount: int | None,
    percentage_bps: int | None,
    amount_per_token: int | None,
    scheduled_at: datetime | None,
    recurrence: str,
    catch_up: str | None,
    time_zone: str | None,
    now: datetime,
) -> None:
    """The shape of a distribution, checked here only: the API serializer and the admin form translate
    input, and every caller gets the same refusal (`InvalidInput` naming the field)."""
    if distribution_type not in (Distribution.Type.PAYOUT, Distribution.Type.BOND_CASH_OUT):
        raise InvalidInput("distribution_type", "corporate actions are created from the asset's chain events")
    if subtype not in Distribution.Subtype.values:
        raise InvalidInput("subtype", f"must be one of {', '.join(Distribution.Subtype.values)}")
    expected = {
        Distribution.AmountType.FIXED: ("amount", amount),
        Distribution.AmountType.PERCENTAGE: ("percentage", percentage_bps),
        Distribution.AmountType.PER_TOKEN: ("amount_per_token", amount_per_token),
    }
    if amount_type not in expected:
        raise InvalidInput("amount_type", f"must be one of {', '.join(Distribution.AmountType.values)}")
    if distribution_type == Distribution.Type.BOND_CASH_OUT and amount_type != Distribution.AmountType.PER_TOKEN:
        raise InvalidInput("amount_type", "a bond cash-out pays PER_TOKEN")
    if distribution_type == Distribution.Type.PAYOUT and amount_type == Distribution.AmountType.PER_TOKEN:
        raise InvalidInput("amount_type", "payouts are FIXED or PERCENTAGE")
    wanted, wanted_value = expected[amount_type]  # type: ignore[index]
    if wanted_value is None:
        raise InvalidInput(wanted, "required for this amount type")
    for kind, (field, value) in expected.items():
        if kind != amount_type and value is not None:
            raise InvalidInput(field, f"not allowed with amount type {amount_type}")
    for field, value in (("amount", amount), ("amount_per_token", amount_per_token)):
        if value is not None and value <= 0:
            raise InvalidInput(field, "must be greater than zero")
        if value is not None and value > UINT256_MAX:
            # the column would take it, the contract would not: refuse before anything is stored
            raise InvalidInput(field, f"too large: at most {UINT256_MAX} base units (uint256)")
    if percentage_bps is not None and not 1 <= percentage_bps <= 10_000:
        raise InvalidInput("percentage", "must be between 0.01 and 100")
    needs_time = subtype in (Distribution.Subtype.ONE_OFF, Distribution.Subtype.RECURRING)
    if needs_time and scheduled_at is None:
        raise InvalidInput("scheduled_at", "required for ONE_OFF and RECURRING")
    if not needs_time and scheduled_at is not None:
        raise InvalidInput("scheduled_at", f"not allowed for {subtype}")
    if scheduled_at is not None and scheduled_at <= now:
        raise InvalidInput("scheduled_at", "must be in the future")
    if (subtype == Distribution.Subtype.RECURRING) != bool(recurrence):
        raise InvalidInput("recurrence", "required for RECURRING and only for it")
    if recurrence and recurrence not in Distribution.Recurrence.values:
        raise InvalidInput("recurrence", f"must be one of {', '.join(Distribution.Recurrence.values)}")
    if catch_up is not None and subtype != Distribution.Subtype.RECURRING:
        raise InvalidInput("catch_up", "only RECURRING series have a catch-up policy")
    if catch_up is not None and catch_up not in Distribution.CatchUp.values:
        raise InvalidInput("catch_up", f"must be one of {', '.join(Distribution.CatchUp.values)}")
    if time_zone is not None and subtype != Distribution.Subtype.RECURRING:
        raise InvalidInput("time_zone", "only RECURRING series have a time zone")
    if time_zone is not None and not known_time_zone(time_zone):
        raise InvalidInput("time_zone", f"unknown time zone {time_zone!r}: use an IANA name such as Europe/Madrid")


def distribution_cancel(*, distribution_id: uuid.UUID, scope: str = CancelScope.OCCURRENCE) -> Distribution:
    """Cancel a SCHEDULED distribution (scope `occurrence`), or a whole series (scope `series`).

    One occurrence of a RECURRING or AUTOMATED series: only it is skipped, and the series goes on with
    its next occurrence at that one's own time (AUTOMATED: on the next deposit). A series: `distribution_id`
    may be any of its occurrences (a running one finishes); every SCHEDULED occurrence is cancelled and
    none is ever created again. Either way the asset row is locked first, like every start, so a start at
    the same moment either committed before (and the occurrence it created is cancelled here too) or finds
    its occurrence CANCELLED. The reason goes in `status_reason`, the scope in `cancel_scope`.
    """
    if scope not in CancelScope.values:
        raise InvalidInput("scope", f"must be one of {', '.join(CancelScope.values)}")
    asset_id = Distribution.objects.filter(pk=distribution_id).values_list("asset_id", flat=True).first()
    if asset_id is None:
        raise NotFound("distribution not found")
    now = timezone.now()
    with transaction.atomic():
        Asset.objects.select_for_update().filter(pk=asset_id).first()  # one lock order with starts: asset first
        if scope == CancelScope.SERIES:
            # the named occurrence may be running: only the SCHEDULED ones are locked (and changed)
            named = Distribution.objects.get(pk=distribution_id)
            _cancel_series(named, now=now)
            return Distribution.objects.get(pk=distribution_id)
        distribution = Distribution.objects.select_for_update().get(pk=distribution_id)
        _cancel_occurrence(distribution, now=now)
    return distribution


def _cancel_occurrence(distribution: Distribution, *, now: datetime) -> None:
    if distribution.status != Status.SCHEDULED:
        raise Conflict(f"only SCHEDULED distributions can be cancelled (this one is {distribution.status})")
    if distribution.series_id is None:
        distribution.mark_cancelled(reason="cancelled before it started", now=now)
    else:
        # the next occurrence is otherwise created only when this one starts: without it the series would end here
        following = (
            _create_next_occurrence(distribution)
            or Distribution.objects.filter(series_id=distribution.series_id, occurrence=distribution.occurrence + 1)
            .only("occurrence", "scheduled_at", "time_zone")
            .first()
        )
        reason = "cancelled: this occurrence only; the series goes on" + (
            f" with occurrence {following.occurrence} {_when(following)}" if following is not None else ""
        )
        distribution.mark_cancelled(reason=reason, now=now, scope=CancelScope.OCCURRENCE)
    logger.info(
        "distribution cancelled distribution_id=%s series_id=%s scope=occurrence",
        distribution.pk,
        distribution.series_id,
    )


def _when(occurrence: Distribution) -> str:
    if occurrence.scheduled_at is None:  # AUTOMATED: due when payment tokens arrive
        return "when payment tokens next arrive at the payout contract"
    return f"at {wall_clock_text(occurrence.scheduled_at, occurrence.time_zone)}"


def _cancel_series(distribution: Distribution, *, now: datetime) -> None:
    series_id = distribution.series_id
    if series_id is None:
        raise InvalidInput(
            "scope", "only RECURRING and AUTOMATED distributions belong to a series: cancel this one as an occurrence"
        )
    if _series_cancelled(series_id):
        raise Conflict("the series is already cancelled")
    scheduled = list(
        Distribution.objects.select_for_update()
        .filter(series_id=series_id, status=Status.SCHEDULED)
        .values_list("pk", flat=True)
    )
    if not scheduled:
        raise Conflict("the series has no SCHEDULED occurrence: it is over, there is nothing to cancel")
    reason = (
        f"cancelled with its whole series (from occurrence {distribution.occurrence}): "
        "no further occurrence is scheduled"
    )
    Distribution.MOVES.claim(
        Distribution.objects.filter(pk__in=scheduled),
        Status.CANCELLED,
        cancel_scope=CancelScope.SERIES,
        status_reason=reason,
        finished_at=now,
        updated_at=now,
    )
    logger.info(
        "distribution series cancelled series_id=%s from_distribution_id=%s cancelled=%s",
        series_id,
        distribution.pk,
        len(scheduled),
    )


def _series_cancelled(series_id: uuid.UUID) -> bool:
    return Distribution.objects.filter(series_id=series_id, cancel_scope=CancelScope.SERIES).exists()


def distribution_start(*, distribution_id: uuid.UUID) -> Distribution:
    """SCHEDULED -> IN_PROGRESS exactly once, if the payout contract can pay it; enqueues planning.

    Raises Conflict for any other status (a concurrent start won) or a paused asset, and
    `Underfunded` (a Conflict) when the contract holds less than it needs beyond what running
    distributions reserved.
    """
    current = Distribution.objects.select_related("asset").filter(pk=distribution_id).first()
    if current is None:
        raise NotFound("distribution not found")
    read = funds_for_start(current.asset) if current.status == Status.SCHEDULED else None
    with transaction.atomic():
        return distribution_claim(distribution_id, now=timezone.now(), read=read)


def funds_for_start(asset: Asset) -> FundsRead | None:
    """The funds view a start needs (a chain read: take it before the transaction); None when the
    start will be refused anyway."""
    if asset.is_paused or not asset.payout_contract_address:
        return None
    return funds_read(asset)


def distribution_claim(distribution_id: uuid.UUID, *, now: datetime, read: FundsRead | None) -> Distribution:
    """The start itself, inside the caller's transaction, with `read` from `funds_for_start`."""
    from payouts.tasks import plan_distribution_task

    current = Distribution.objects.filter(pk=distribution_id).first()
    if current is None:
        raise NotFound("distribution not found")
    asset = Asset.objects.select_for_update().get(pk=current.asset_id)  # one start at a time per payout contract
    if asset.is_paused:
        raise Conflict("the asset is paused: unpause it first")
    if current.status != Status.SCHEDULED:
        raise Conflict(f"the distribution is not SCHEDULED (it is {current.status}): it runs only once")
    if read is None:
        raise Conflict("the asset changed while the distribution was starting: try again")
    funds_require(asset, read, need=max(planned_need(current), 1), exclude=current.pk, what="this distribution")
    claimed = Distribution.MOVES.claim(
        Distribution.objects.filter(pk=distribution_id),
        Status.IN_PROGRESS,
        sources=[Status.SCHEDULED],  # a FAILED one is retried, not started
        started_at=now,
        error="",
        status_reason="",
        updated_at=now,
    )
    if claimed != 1:
        raise Conflict("the distribution is not SCHEDULED any more: it runs only once")
    distribution = Distribution.objects.select_related("asset").get(pk=distribution_id)
    _create_next_occurrence(distribution)
    publish_on_commit(plan_distribution_task, str(distribution_id))
    logger.info("distribution started distribution_id=%s", distribution_id)
    return distribution


def _create_next_occurrence(distribution: Distribution) -> Distribution | None:
    """The next SCHEDULED occurrence of a recurring or automated series (idempotent); never for a
    cancelled series. The caller holds the asset row lock, as `distribution_cancel` does."""
    if distribution.series_id is None:
        return None
    occurrence = distribution.occurrence + 1
    if Distribution.objects.filter(series_id=distribution.series_id, occurrence=occurrence).exists():
        return None
    if _series_cancelled(distribution.series_id):
        logger.warning("cancelled series not continued series_id=%s", distribution.series_id)
        return None
    following = build_occurrence(distribution, occurrence=occurrence)
    following.save(force_insert=True)
    return following


def build_occurrence(distribution: Distribution, *, occurrence: int, **fields: Any) -> Distribution:
    """Occurrence `occurrence` of `distribution`'s series, unsaved: the same terms, its own ids and time.

    `fields` are set on it too (the catch-up writes missed occurrences as SKIPPED with a reason).
    """
    if distribution.subtype == Distribution.Subtype.RECURRING:
        assert distribution.recurrence_anchor is not None  # noqa: S101 - set at creation for RECURRING
        fields["scheduled_at"] = occurrence_time(
            anchor=distribution.recurrence_anchor,
            recurrence=distribution.recurrence,
            occurrence=occurrence,
            time_zone=distribution.time_zone,
        )
    next_id = uuid.uuid4()
    return Distribution(
        id=next_id,
        asset_id=distribution.asset_id,
        distribution_type=distribution.distribution_type,
        subtype=distribution.subtype,
        amount_type=distribution.amount_type,
        amount=distribution.amount,
        percentage_bps=distribution.percentage_bps,
        amount_per_token=distribution.amount_per_token,
        computed_total=distribution.amount if distribution.amount_type == Distribution.AmountType.FIXED else None,
        concept=distribution.concept,
        recurrence=distribution.recurrence,
        series_id=distribution.series_id,
        occurrence=occurrence,
        recurrence_anchor=distribution.recurrence_anchor,
        catch_up=distribution.catch_up,
        time_zone=distribution.time_zone,
        chain_distribution_id=gateway.chain_distribution_id(next_id),
        **fields,
    )
