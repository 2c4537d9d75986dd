"""Typed chain errors: callers decide to retry (transient) or give up (permanent).

`map_exception` turns whatever web3.py, requests or the node raised into one of these. Nothing
outside `chain/` should ever see a raw web3 or requests exception.
"""

from __future__ import annotations

import requests
from web3 import exceptions as web3_exceptions


class ChainError(Exception):
    """Base class of every chain error."""


class TransientChainError(ChainError):
    """Worth retrying later: the node or the network was in the way, not the transaction."""


class RpcTimeout(TransientChainError):
    """The RPC call did not answer in time."""


class RpcConnectionError(TransientChainError):
    """The RPC endpoint could not be reached, or answered with a server error."""


class NonceTooLow(TransientChainError):
    """The nonce was already used: recover the nonce from the chain (and check our own receipt)."""


class NonceTooHigh(TransientChainError):
    """The nonce is above the account's next one as the node sees it. Hedera's JSON-RPC relay does
    not buffer transactions by nonce: keep the signed transaction and send it again once the lower
    nonces are mined (never sign it again under another nonce)."""


class Underpriced(TransientChainError):
    """Fees too low for the node (or for replacing a pending transaction): bump and retry."""


class PermanentChainError(ChainError):
    """Retrying the same thing will fail the same way."""


class TransactionReverted(PermanentChainError):
    """The call or transaction reverted (in a gas estimate, an eth_call or on chain)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"reverted: {reason}" if reason else "reverted")
        self.reason = reason


class InsufficientFunds(PermanentChainError):
    """The sender cannot pay for gas (and value): fund the account."""


class UndecodableLog(ChainError):
    """A log matches no event in our ABIs (or its data does not decode)."""


_NONCE_TOO_LOW = ("nonce too low", "nonce has already been used", "already been used", "oldnonce")
_NONCE_TOO_HIGH = ("nonce too high",)
_UNDERPRICED = (
    "underpriced",
    "fee too low",
    "max fee per gas less than block base fee",
    "transaction fee cap",
    "gas price too low",
)
_INSUFFICIENT_FUNDS = ("insufficient funds", "insufficient balance for transfer", "lack of funds")
_REVERTED = ("execution reverted", "revert")


def _rpc_message(exc: BaseException) -> str:
    if isinstance(exc, web3_exceptions.Web3RPCError):
        response = exc.rpc_response or {}
        error = response.get("error") if isinstance(response, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        return str(exc.message)
    return str(exc)


def classify_message(message: str) -> ChainError | None:
    """The typed error for a node's error message, or None when the message is not recognised."""
    lowered = message.lower()
    if any(marker in lowered for marker in _NONCE_TOO_LOW):
        return NonceTooLow(message)
    if any(marker in lowered for marker in _NONCE_TOO_HIGH):
        return NonceTooHigh(message)
    if any(marker in lowered for marker in _UNDERPRICED):
        return Underpriced(message)
    if any(marker in lowered for marker in _INSUFFICIENT_FUNDS):
        return InsufficientFunds(message)
    if any(marker in lowered for marker in _REVERTED):
        reason = message.split("reverted:", 1)[1].strip() if "reverted:" in lowered else ""
        return TransactionReverted(reason)
    return None


def map_exception(exc: BaseException) -> ChainError:
    """The typed error for an exception raised while talking to the chain."""
    if isinstance(exc, ChainError):
        return exc
    if isinstance(exc, web3_exceptions.ContractLogicError):
        message = str(exc.message if hasattr(exc, "message") else exc)
        reason = message.split("reverted:", 1)[1].strip() if "reverted:" in message else message
        return TransactionReverted(reason.removeprefix("execution reverted").strip(" :"))
    if isinstance(exc, requests.Timeout | web3_exceptions.TimeExhausted | web3_exceptions.RequestTimedOut):
        return RpcTimeout(type(exc).__name__)
    if isinstance(exc, requests.ConnectionError | web3_exceptions.ProviderConnectionError | ConnectionError):
        return RpcConnectionError(type(exc).__name__)
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500 or status == 429:
            return RpcConnectionError(f"HTTP {status}")
        return PermanentChainError(f"HTTP {status}")
    if isinstance(exc, web3_exceptions.Web3RPCError):
        message = _rpc_message(exc)
        return classify_message(message) or PermanentChainError(message)
    if isinstance(exc, web3_exceptions.BadResponseFormat):
        return RpcConnectionError("bad response format")
    return PermanentChainError(f"{type(exc).__name__}: {exc}")
