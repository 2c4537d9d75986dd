"""Event processors registered by (ABI, event name): apps call `register_event_processor` in `ready()`.

A processor is keyed by the ABI its listener decodes with (the contract's role: `AssetToken`,
`PayoutContract`, `PaymentToken`) and the event's name, so a `Transfer` of the payment token and a
`Transfer` of the asset token reach different processors (or none). One processor per key: a
processor that must do several things does them itself, so that "reprocess" can never run half of
an event's effects twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chain.events import DecodedEvent

EventProcessor = Callable[[DecodedEvent], None]

_processors: dict[tuple[str, str], EventProcessor] = {}


def register_event_processor(abi_name: str, event_name: str, processor: EventProcessor) -> None:
    """Dispatch every stored event `event_name` decoded with ABI `abi_name` to `processor`.

    The processor receives a `DecodedEvent` and runs inside the database transaction that stores the
    event and advances the listener's cursor (in a savepoint of its own): its writes commit with them
    or not at all. It must not do network I/O. If it raises, the event is stored as FAILED with the
    error and the stream goes on; an operator reprocesses it from the admin.
    """
    key = (abi_name, event_name)
    existing = _processors.get(key)
    if existing is not None and existing is not processor:
        raise ValueError(f"a processor is already registered for {abi_name}.{event_name}: {existing!r}")
    _processors[key] = processor


def unregister_event_processor(abi_name: str, event_name: str) -> None:
    """Remove the processor of `abi_name`'s `event_name` (tests and app reloads)."""
    _processors.pop((abi_name, event_name), None)


def get_event_processor(abi_name: str, event_name: str) -> EventProcessor | None:
    return _processors.get((abi_name, event_name))


def registered_events() -> list[tuple[str, str]]:
    """Every (ABI, event name) with a processor, sorted."""
    return sorted(_processors)


@contextmanager
def event_processors_isolated() -> Iterator[None]:
    """No processor registered inside the block (tests register their own); the ones registered
    before it are back afterwards."""
    saved = dict(_processors)
    _processors.clear()
    try:
        yield
    finally:
        _processors.clear()
        _processors.update(saved)
