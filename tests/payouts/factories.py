"""factory_boy factories for payouts models (use the typed `make_*` helpers in tests)."""

# mypy: disable-error-code="type-arg,attr-defined,no-untyped-call"

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

import factory
from django.utils import timezone

from payouts import gateway
from payouts.models import Asset, AssetHolder, Distribution


def address(n: int) -> str:
    return "0x" + f"{n:040x}"


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    name = factory.Sequence(lambda n: f"Asset {n}")
    symbol = factory.Sequence(lambda n: f"AST{n}")
    token_address = factory.Sequence(lambda n: address(0xA000 + n))
    asset_type = Asset.AssetType.EQUITY
    decimals = 0
    payout_contract_address = factory.Sequence(lambda n: address(0xB000 + n))
    payment_token_address = factory.Sequence(lambda n: address(0xC000 + n))
    payment_token_decimals = 6
    payment_token_symbol = "USDC"
    sync_status = Asset.SyncStatus.SYNCED
    is_paused = False
    pause_state = factory.LazyAttribute(lambda a: Asset.PauseState.PAUSED if a.is_paused else Asset.PauseState.ACTIVE)


class AssetHolderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssetHolder

    asset = factory.SubFactory(AssetFactory)
    address = factory.Sequence(lambda n: address(0xD000 + n))
    balance = 100


class DistributionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Distribution

    id = factory.LazyFunction(uuid.uuid4)
    asset = factory.SubFactory(AssetFactory)
    subtype = Distribution.Subtype.ONE_OFF
    amount_type = Distribution.AmountType.FIXED
    amount = 1_000_000
    computed_total = factory.LazyAttribute(lambda d: d.amount)
    scheduled_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    chain_distribution_id = factory.LazyAttribute(lambda d: gateway.chain_distribution_id(d.id))


# Typed entry points for tests (factory_boy is untyped).
def make_asset(**fields: Any) -> Asset:
    return cast(Asset, AssetFactory(**fields))


def make_holder(**fields: Any) -> AssetHolder:
    return cast(AssetHolder, AssetHolderFactory(**fields))


def make_distribution(**fields: Any) -> Distribution:
    return cast(Distribution, DistributionFactory(**fields))
