"""Event processors registered by event name (apps call `register_event_processor` in `ready()`).

One processor per event name: a processor that must do several things does them itself, so that
"reprocess" can never run half of an event's effects twice.
"""

from __future__ import annotations

from collections.abc import Callable

from chain.events import DecodedEvent

EventProcessor = Callable[[DecodedEvent], None]

_processors: dict[str, EventProcessor] = {}


def register_event_processor(event_name: str, processor: EventProcessor) -> None:
    """Dispatch every stored event named `event_name` to `processor`.

    The processor receives a `DecodedEvent` and runs inside the database transaction that stores the
    event and advances the listener's cursor (in a savepoint of its own): its writes commit with them
    or not at all. It must not do network I/O. If it raises, the event is stored as FAILED with the
    error and the stream goes on; an operator reprocesses it from the admin.
    """
    existing = _processors.get(event_name)
    if existing is not None and existing is not processor:
        raise ValueError(f"a processor is already registered for {event_name}: {existing!r}")
    _processors[event_name] = processor


def unregister_event_processor(event_name: str) -> None:
    """Remove the processor of `event_name` (tests and app reloads)."""
    _processors.pop(event_name, None)


def get_event_processor(event_name: str) -> EventProcessor | None:
    return _processors.get(event_name)


def registered_event_names() -> list[str]:
    return sorted(_processors)
