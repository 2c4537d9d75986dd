"""Event listener: polls contract logs (JSON-RPC or Hedera Mirror Node), stores and dispatches them.

Public names: `register_event_processor`, `listener_ensure`, `listener_poll`, `PollResult`,
`listener_reset_cursor`, `listener_set_enabled`, `event_reprocess`.
"""

from __future__ import annotations

from chain.listener.engine import listener_poll
from chain.listener.registry import register_event_processor
from chain.listener.services import (
    ListenerConflict,
    event_reprocess,
    listener_ensure,
    listener_reset_cursor,
    listener_set_enabled,
)
from chain.listener.types import PollResult

__all__ = [
    "ListenerConflict",
    "PollResult",
    "event_reprocess",
    "listener_ensure",
    "listener_poll",
    "listener_reset_cursor",
    "listener_set_enabled",
    "register_event_processor",
]
