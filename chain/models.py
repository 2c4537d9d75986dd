"""Chain tables. The submission lane's models live in `chain.lane.models`, the listener's in `chain.listener.models`."""

from __future__ import annotations

from chain.lane.models import ChainTransaction, IllegalTransition, SenderNonce, SignedVersion
from chain.listener.models import ChainEvent, EventListener

__all__ = ["ChainEvent", "ChainTransaction", "EventListener", "IllegalTransition", "SenderNonce", "SignedVersion"]
