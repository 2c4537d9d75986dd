"""Funding: what a payout contract holds, what is already promised out of it, and the check that
refuses to start a distribution the contract cannot pay in full.

Reservations are derived, never stored: every IN_PROGRESS distribution of the asset reserves what it
still has to pay (its planned total, or before planning its FIXED amount or PER_TOKEN estimate,
minus what it has paid), and every withdrawal not yet final reserves its amount. Two distributions
can therefore never both count the same balance.

The check is race-free without network I/O inside a transaction:
1. `funds_read` (no transaction): the running distributions' paid amounts, THEN the contract's
   balance from the chain. A payment mined between the two reads lowers the balance while the paid
   amount read before it still reserves it: the view can only be too cautious, never too generous.
2. `funds_require` (inside the caller's transaction, with the asset row locked, which serialises
   every start, retry and withdrawal of the asset): reservations are recomputed from the rows; a
   distribution that started after step 1 reserves its whole total.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Sum

from config.errors import Conflict
from payouts import gateway
from payouts.models import Asset, AssetHolder, Distribution, FundsWithdrawal
from payouts.units import format_units


@dataclass(frozen=True)
class FundsRead:
    """Step 1: read outside any transaction."""

    balance: int
    paid_seen: dict[uuid.UUID, int]


@dataclass(frozen=True)
class Funds:
    balance: int
    reserved: int
    reserving: int  # distributions and withdrawals holding a reservation

    @property
    def available(self) -> int:
        return max(self.balance - self.reserved, 0)


class Underfunded(Conflict):
    """The payout contract cannot pay this in full (409; scheduled runs wait for funds)."""


def funds_read(asset: Asset) -> FundsRead:
    paid_seen = dict(
        Distribution.objects.filter(asset=asset, status=Distribution.Status.IN_PROGRESS).values_list(
            "id", "paid_amount"
        )
    )
    balance = gateway.client().erc20_balance(
        gateway.checksum(asset.payment_token_address), gateway.checksum(asset.payout_contract_address)
    )
    return FundsRead(balance=balance, paid_seen={k: int(v) for k, v in paid_seen.items()})


def planned_need(distribution: Distribution) -> int:
    """What the distribution will pay in all: its total once planned; before that the FIXED amount,
    0 for a PERCENTAGE (it takes a share of what is available when it is planned), and for PER_TOKEN
    an upper bound from the holder table (the exact sum is checked again when it is planned)."""
    if distribution.computed_total is not None:
        return int(distribution.computed_total)
    if distribution.amount_type == Distribution.AmountType.FIXED:
        return int(distribution.amount or 0)
    if distribution.amount_type == Distribution.AmountType.PER_TOKEN:
        held = AssetHolder.objects.filter(asset_id=distribution.asset_id, balance__gt=0).aggregate(
            total=Sum("balance")
        )["total"]
        decimals: int = Asset.objects.values_list("decimals", flat=True).get(pk=distribution.asset_id)
        unit: int = 10**decimals
        return int(held or 0) * int(distribution.amount_per_token or 0) // unit
    return 0


def funds_locked(asset: Asset, read: FundsRead, *, exclude: uuid.UUID | None = None) -> Funds:
    """Step 2: call with the asset row locked (`select_for_update`) in the caller's transaction."""
    reserved = reserving = 0
    running = Distribution.objects.filter(asset=asset, status=Distribution.Status.IN_PROGRESS)
    if exclude is not None:
        running = running.exclude(pk=exclude)
    for distribution in running:
        # the paid amount read BEFORE the balance; one that started since reserves its whole total
        paid = read.paid_seen.get(distribution.pk, 0)
        reserved += max(planned_need(distribution) - paid, 0)
        reserving += 1
    withdrawing = FundsWithdrawal.objects.filter(asset=asset, status=FundsWithdrawal.Status.PENDING).aggregate(
        total=Sum("amount")
    )["total"]
    if withdrawing:
        reserved += int(withdrawing)
        reserving += FundsWithdrawal.objects.filter(asset=asset, status=FundsWithdrawal.Status.PENDING).count()
    return Funds(balance=read.balance, reserved=reserved, reserving=reserving)


def funds_require(asset: Asset, read: FundsRead, *, need: int, exclude: uuid.UUID | None = None, what: str) -> Funds:
    """Raise `Underfunded` (naming what the contract holds and what `what` needs) unless `need` fits."""
    funds = funds_locked(asset, read, exclude=exclude)
    if need > funds.available:
        raise Underfunded(underfunded_message(asset, funds, need=need, what=what))
    return funds


def underfunded_message(asset: Asset, funds: Funds, *, need: int, what: str) -> str:
    decimals = asset.payment_token_decimals

    def units(value: int) -> str:
        return format_units(value, decimals) or "0"

    reserved = (
        f", of which {units(funds.reserved)} is reserved by {funds.reserving} running distribution(s) or withdrawal(s)"
        if funds.reserved
        else ""
    )
    return (
        f"the payout contract holds {units(funds.balance)} payment-token units{reserved}; "
        f"{what} needs {units(need)}: fund the contract with at least {units(need - funds.available)} more"
    )
