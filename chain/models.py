"""Chain tables. The submission lane's models live in `chain.lane.models`."""

from __future__ import annotations

from chain.lane.models import ChainTransaction, IllegalTransition, SenderNonce, SignedVersion

__all__ = ["ChainTransaction", "IllegalTransition", "SenderNonce", "SignedVersion"]
