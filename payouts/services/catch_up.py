"""Catch-up of recurring series: what the scheduler does with the occurrences it finds missed.

An occurrence is *missed* when, at the moment the scheduler looks, a later occurrence of its series
is already due (`latest_due_occurrence`): the system was down, or the asset was paused (the
scheduler leaves paused assets alone, so their occurrences wait). Both take this one path, decided
when the scheduler looks. Each RECURRING series carries its policy (`Distribution.catch_up`):

- `latest` (default): the latest due occurrence runs; the missed ones before it become SKIPPED.
- `all`: every missed occurrence runs, one per scheduler pass, each for the full amount.
- `none`: every due occurrence becomes SKIPPED; the series continues with its next future one.

A catch-up is one transaction: the SKIPPED rows (each with its reason) and the occurrence that
follows are written with one INSERT, then the latest is claimed like any start. It raises ONE
Discord alert after commit (cause `payout-catch-up:<series id>`), however many rows it skipped.

A due distribution whose payout contract cannot pay it in full does not start (and its catch-up,
if any, is rolled back): it stays SCHEDULED with the reason in `status_reason`, one alert per asset
and rate-limit window (cause `payout-underfunded:<asset id>`), and the next scheduler pass tries
again, so it starts on the first tick after the contract is funded.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from functools import partial

from django.db import transaction

from config.alerts import AlertField, send_alert
from config.errors import Conflict, NotFound
from payouts.models import Asset, Distribution
from payouts.recurrence import DEFAULT_TIME_ZONE, latest_due_occurrence, occurrence_time, wall_clock_text
from payouts.services.distributions import build_occurrence, distribution_claim, funds_for_start
from payouts.services.funding import FundsRead, Underfunded

logger = logging.getLogger(__name__)

Status = Distribution.Status
CatchUp = Distribution.CatchUp
WHY = "while the system was down or the asset was paused"
MISSED = f"missed {WHY}"


def distribution_start_due(*, distribution_id: uuid.UUID, now: datetime) -> Distribution | None:
    """Start a due SCHEDULED distribution; if its series missed occurrences, apply the series' policy.

    Returns the distribution that started, or None when the policy skipped every due occurrence.
    Raises Conflict like `distribution_start` (no longer SCHEDULED, asset paused), changing nothing.
    """
    current = Distribution.objects.select_related("asset").filter(pk=distribution_id).first()
    if current is None:
        raise NotFound("distribution not found")
    read = funds_for_start(current.asset)  # a chain read: before the transaction
    try:
        with transaction.atomic():
            # the asset first, like every start: one lock order, no deadlock with an operator's start
            Asset.objects.select_for_update().get(pk=current.asset_id)
            distribution = (
                Distribution.objects.select_for_update(of=("self",)).select_related("asset").get(pk=distribution_id)
            )
            latest = _latest_due(distribution, now=now)
            if latest is None or latest <= distribution.occurrence:
                return distribution_claim(distribution_id, now=now, read=read)
            if distribution.status != Status.SCHEDULED:
                raise Conflict(f"the distribution is not SCHEDULED (it is {distribution.status}): it runs only once")
            if distribution.asset.is_paused:
                raise Conflict("the asset is paused: unpause it first")
            if distribution.catch_up == CatchUp.ALL:
                return _run_missed(distribution, latest=latest, now=now, read=read)
            return _skip_missed(distribution, latest=latest, now=now, read=read)
    except Underfunded as exc:
        _wait_for_funds(current, reason=str(exc), now=now)
        raise


def _wait_for_funds(distribution: Distribution, *, reason: str, now: datetime) -> None:
    """It stays SCHEDULED, says why, and the operators hear of it (rate-limited per asset)."""
    Distribution.objects.filter(pk=distribution.pk, status=Status.SCHEDULED).update(
        status_reason=f"waiting for funds: {reason}", updated_at=now
    )
    asset = distribution.asset
    logger.warning("due distribution waits for funds distribution_id=%s reason=%s", distribution.pk, reason)
    send_alert(
        cause=f"payout-underfunded:{asset.pk}",
        title="Payout waiting for funds",
        description=f"A due distribution of {asset.name} cannot start: {reason}. It starts on the first "
        "scheduler pass after the payout contract is funded.",
        fields=[
            AlertField("Distribution", str(distribution.pk)),
            AlertField("Asset", f"{asset.name} ({asset.pk})"),
            AlertField("Payout contract", asset.payout_contract_address),
        ],
    )


def _latest_due(distribution: Distribution, *, now: datetime) -> int | None:
    """The latest due occurrence of a RECURRING series (None for anything else)."""
    if distribution.subtype != Distribution.Subtype.RECURRING or distribution.recurrence_anchor is None:
        return None  # an anchorless series fails in `distribution_start`, as it always did
    return latest_due_occurrence(
        anchor=distribution.recurrence_anchor,
        recurrence=distribution.recurrence,
        now=now,
        time_zone=distribution.time_zone,
    )


def _skip_missed(
    distribution: Distribution, *, latest: int, now: datetime, read: FundsRead | None
) -> Distribution | None:
    """LATEST: skip up to `latest - 1` and start `latest`; NONE: skip up to `latest`, schedule the next."""
    runs_latest = distribution.catch_up == CatchUp.LATEST
    following = latest if runs_latest else latest + 1
    if runs_latest:
        reason = f"{MISSED}; occurrence {latest} ran instead (catch-up policy latest)"
        next_text = f"occurrence {latest} (due {_at(distribution, latest)}) runs now"
    else:
        next_text = f"the series continues with occurrence {following} at {_at(distribution, following)}"
        reason = f"{MISSED}; catch-up policy none: {next_text}"
    distribution.mark_skipped(reason=reason, now=now)
    rows = [
        build_occurrence(distribution, occurrence=n, status=Status.SKIPPED, status_reason=reason, finished_at=now)
        for n in range(distribution.occurrence + 1, following)
    ]
    rows.append(build_occurrence(distribution, occurrence=following))
    Distribution.objects.bulk_create(rows)  # one INSERT, however long the outage was
    skipped = range(distribution.occurrence, following)
    logger.warning(
        "recurring series caught up series_id=%s policy=%s skipped=%s next_occurrence=%s",
        distribution.series_id,
        distribution.catch_up,
        len(skipped),
        following,
    )
    _alert_after_commit(distribution, latest=latest, skipped=skipped, next_text=next_text)
    return distribution_claim(rows[-1].id, now=now, read=read) if runs_latest else None


def _run_missed(distribution: Distribution, *, latest: int, now: datetime, read: FundsRead | None) -> Distribution:
    """ALL: this missed occurrence runs now, the next one on the next pass; one alert when it fell behind."""
    started = distribution_claim(distribution.pk, now=now, read=read)
    if _fell_behind_now(distribution):  # later passes of the same catch-up stay quiet
        logger.warning(
            "recurring series behind, running every missed occurrence series_id=%s from=%s to=%s",
            distribution.series_id,
            distribution.occurrence,
            latest,
        )
        next_text = (
            f"occurrences {distribution.occurrence} to {latest} run one per scheduler pass, "
            "each for the full amount to the holders of that moment"
        )
        _alert_after_commit(distribution, latest=latest, skipped=range(0), next_text=next_text)
    return started


def _fell_behind_now(distribution: Distribution) -> bool:
    """True unless the previous occurrence itself started late (then this catch-up was already alerted)."""
    previous_started = (
        Distribution.objects.filter(series_id=distribution.series_id, occurrence=distribution.occurrence - 1)
        .values_list("started_at", flat=True)
        .first()
    )
    return previous_started is None or distribution.scheduled_at is None or previous_started < distribution.scheduled_at


def _at(distribution: Distribution, occurrence: int) -> str:
    assert distribution.recurrence_anchor is not None  # noqa: S101 - RECURRING only
    moment = occurrence_time(
        anchor=distribution.recurrence_anchor,
        recurrence=distribution.recurrence,
        occurrence=occurrence,
        time_zone=distribution.time_zone,
    )
    if distribution.time_zone == DEFAULT_TIME_ZONE:
        return moment.isoformat()
    return wall_clock_text(moment, distribution.time_zone)


def _alert_after_commit(distribution: Distribution, *, latest: int, skipped: range, next_text: str) -> None:
    missed = latest - distribution.occurrence
    if not skipped:
        skipped_text = "none"
    elif len(skipped) == 1:
        skipped_text = f"1 occurrence ({skipped[0]})"
    else:
        skipped_text = f"{len(skipped)} occurrences ({skipped[0]} to {skipped[-1]})"
    asset = distribution.asset
    transaction.on_commit(
        partial(
            send_alert,
            cause=f"payout-catch-up:{distribution.series_id}",
            title="Recurring payout missed occurrences",
            description=(
                f"A {distribution.recurrence} series of {asset.name} fell {missed} occurrence(s) behind {WHY}. "
                f"Catch-up policy {distribution.catch_up}: {next_text}."
            ),
            fields=[
                AlertField("Series", str(distribution.series_id)),
                AlertField("Asset", f"{asset.name} ({asset.pk})"),
                AlertField("Policy", distribution.catch_up),
                AlertField("Skipped", skipped_text),
                AlertField("Next", next_text),
            ],
        ),
        robust=True,
    )
