"""factory_boy factories for listeners and stored events."""

# factory_boy's declarations are untyped functions.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import factory.django
from eth_utils.crypto import keccak
from factory.declarations import LazyAttribute, SelfAttribute, Sequence, SubFactory

from chain.models import ChainEvent, EventListener

SNAPSHOT_TOPIC = "0x" + keccak(text="Snapshot(uint256)").hex()


class EventListenerFactory(factory.django.DjangoModelFactory[EventListener]):
    class Meta:
        model = EventListener

    name = Sequence(lambda n: f"listener-{n}")
    contract_address = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
    abi_name = "AssetToken"
    source = EventListener.Source.RPC


class ChainEventFactory(factory.django.DjangoModelFactory[ChainEvent]):
    """A stored Snapshot(id) log of an asset token, as the RPC source stores it."""

    class Meta:
        model = ChainEvent

    class Params:
        snapshot_id = 1

    listener = SubFactory(EventListenerFactory)
    tx_hash = Sequence(lambda n: "0x" + f"{n:064x}")
    log_index = 0
    contract_address = SelfAttribute("listener.contract_address")
    block_number = Sequence(lambda n: 100 + n)
    event_name = "Snapshot"
    args = LazyAttribute(lambda event: {"id": str(event.snapshot_id)})
    raw_log = LazyAttribute(
        lambda event: {
            "address": event.contract_address.lower(),
            "topics": [SNAPSHOT_TOPIC],
            "data": "0x" + event.snapshot_id.to_bytes(32, "big").hex(),
        }
    )
    status = ChainEvent.Status.FAILED
    error = "RuntimeError: boom"
    attempts = 1
