"""Reads for the API and admin; every list is ordered by an index so pages stay cheap at scale.

A `_get` raises `config.errors.NotFound` for an unknown or malformed id (a 404, never a 500).
"""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from config.errors import NotFound, parse_id
from payouts.models import Asset, AssetHolder, BatchPayout, Distribution, FundsWithdrawal, HolderPayment


def asset_get(asset_id: str | uuid.UUID) -> Asset:
    asset = Asset.objects.filter(pk=parse_id(asset_id, what="asset")).first()
    if asset is None:
        raise NotFound("asset not found")
    return asset


def asset_list(*, sync_status: str | None = None, is_paused: bool | None = None) -> QuerySet[Asset]:
    assets = Asset.objects.order_by("-created_at")
    if sync_status:
        assets = assets.filter(sync_status=sync_status)
    if is_paused is not None:
        assets = assets.filter(is_paused=is_paused)
    return assets


def holder_list(*, asset: Asset) -> QuerySet[AssetHolder]:
    return AssetHolder.objects.filter(asset=asset, balance__gt=0).order_by("address")


def distribution_get(distribution_id: str | uuid.UUID) -> Distribution:
    parsed = parse_id(distribution_id, what="distribution")
    distribution = Distribution.objects.select_related("asset").filter(pk=parsed).first()
    if distribution is None:
        raise NotFound("distribution not found")
    return distribution


def distribution_list(*, asset_id: uuid.UUID | None = None, status: str | None = None) -> QuerySet[Distribution]:
    distributions = Distribution.objects.select_related("asset").order_by("-created_at")
    if asset_id is not None:
        distributions = distributions.filter(asset_id=asset_id)
    if status:
        distributions = distributions.filter(status=status)
    return distributions


def batch_list(*, distribution: Distribution, status: str | None = None) -> QuerySet[BatchPayout]:
    batches = BatchPayout.objects.filter(distribution=distribution).order_by("number")
    return batches.filter(status=status) if status else batches


def payment_list(
    *, distribution: Distribution, status: str | None = None, batch_number: int | None = None
) -> QuerySet[HolderPayment]:
    payments = HolderPayment.objects.filter(distribution=distribution)
    if status:
        payments = payments.filter(status=status)
    if batch_number is not None:
        payments = payments.filter(batch_number=batch_number)
    return payments.order_by("batch_number", "holder_address")


def withdrawal_list(*, asset: Asset) -> QuerySet[FundsWithdrawal]:
    return FundsWithdrawal.objects.filter(asset=asset).select_related("asset").order_by("-created_at")
