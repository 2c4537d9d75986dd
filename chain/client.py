"""JSON-RPC client (web3.py): reads, fees, nonces, raw-transaction broadcast, receipts, log decoding.

Every public method raises `chain.errors` types only. Amounts are `int` base units, addresses are
checksummed `str`, hashes are `0x`-prefixed lowercase hex `str`. Contract reads take a keyword-only
`block` (a block number, or a tag such as "latest") so that several reads can see one state.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3 import exceptions as web3_exceptions

from chain import abi
from chain.errors import ChainError, PermanentChainError, RpcTimeout, UndecodableLog, map_exception
from chain.events import DecodedEvent

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The block a read sees: an int is a block number, a str a tag ("latest", "safe", "finalized", ...).
BlockId = int | str


@dataclass(frozen=True)
class TokenDetails:
    name: str
    symbol: str
    decimals: int
    asset_type: str  # one of abi.ASSET_TYPES
    maturity_date: datetime.date | None


@dataclass(frozen=True)
class PayoutContractInfo:
    asset_token: str
    payment_token: str
    paused: bool


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block_number: int
    status: str  # "ok" or "failed"
    gas_used: int
    block_hash: str = ""
    logs: tuple[dict[str, Any], ...] = field(default=(), hash=False)

    @property
    def succeeded(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


def to_hex(value: bytes | str) -> str:
    return "0x" + bytes(HexBytes(value)).hex()


def _raw_log(log: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-dict copy of a web3 log (hex strings, ints) that survives JSON and pickling."""
    return {
        "address": to_checksum_address(log["address"]),
        "topics": [to_hex(topic) for topic in log["topics"]],
        "data": to_hex(log["data"]),
        "blockNumber": int(log["blockNumber"]),
        "transactionHash": to_hex(log["transactionHash"]),
        "logIndex": int(log["logIndex"]),
        "blockHash": to_hex(log["blockHash"]) if log.get("blockHash") else None,
    }


class ChainClient:
    """One EVM JSON-RPC endpoint. Cheap to create; no retries of its own (callers decide)."""

    def __init__(self, rpc_url: str, timeout: float = 10.0) -> None:
        if not rpc_url:
            raise PermanentChainError("no chain RPC URL configured (CHAIN_RPC_URL)")
        self.rpc_url = rpc_url
        provider = HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
        self.web3 = Web3(provider)

    @classmethod
    def from_settings(cls) -> ChainClient:
        return cls(settings.CHAIN_RPC_URL, timeout=settings.CHAIN_RPC_TIMEOUT)

    def _rpc(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except ChainError:
            raise
        except Exception as exc:
            raise map_exception(exc) from exc

    def _call(
        self, contract: str, address: str, function: str, args: Sequence[Any] = (), *, block: BlockId = "latest"
    ) -> tuple[Any, ...]:
        data = abi.encode_call(contract, function, args)
        result = self.call(to=address, data=data, block=block)
        if not result:
            raise map_exception(ValueError(f"{function} returned nothing: is {address} a {contract}?"))
        try:
            return abi.decode_result(contract, function, bytes(result))
        except Exception as exc:
            raise map_exception(exc) from exc

    # --- chain ------------------------------------------------------------------------------------
    def chain_id(self) -> int:
        return int(self._rpc(lambda: self.web3.eth.chain_id))

    def block_number(self) -> int:
        return int(self._rpc(lambda: self.web3.eth.block_number))

    def block_hash(self, block_number: int) -> str | None:
        """The hash of the canonical block at `block_number`, or None when the chain is not that long."""
        try:
            block = self.web3.eth.get_block(block_number)
        except web3_exceptions.BlockNotFound:
            return None
        except Exception as exc:
            raise map_exception(exc) from exc
        return to_hex(block["hash"]) if block.get("hash") else None

    def block_gas_limit(self) -> int:
        return int(self._rpc(lambda: self.web3.eth.get_block("latest"))["gasLimit"])

    def block_timestamp(self, block_number: int) -> datetime.datetime:
        block = self._rpc(lambda: self.web3.eth.get_block(block_number))
        return datetime.datetime.fromtimestamp(int(block["timestamp"]), tz=datetime.UTC)

    def balance(self, account: str) -> int:
        """Native currency balance (wei)."""
        return int(self._rpc(lambda: self.web3.eth.get_balance(to_checksum_address(account))))

    def has_code(self, address: str) -> bool:
        """Whether a contract is deployed at `address`."""
        return len(self._rpc(lambda: self.web3.eth.get_code(to_checksum_address(address)))) > 0

    # --- tokens -----------------------------------------------------------------------------------
    def token_details(self, token_address: str) -> TokenDetails:
        (name,) = self._call("AssetToken", token_address, "name")
        (symbol,) = self._call("AssetToken", token_address, "symbol")
        (decimals,) = self._call("AssetToken", token_address, "decimals")
        (asset_type,) = self._call("AssetToken", token_address, "assetType")
        (maturity,) = self._call("AssetToken", token_address, "maturityDate")
        if asset_type >= len(abi.ASSET_TYPES):
            raise map_exception(ValueError(f"unknown asset type {asset_type}"))
        maturity_date = datetime.datetime.fromtimestamp(maturity, tz=datetime.UTC).date() if maturity else None
        return TokenDetails(
            name=name,
            symbol=symbol,
            decimals=int(decimals),
            asset_type=abi.ASSET_TYPES[asset_type],
            maturity_date=maturity_date,
        )

    def holder_count(self, token: str, *, block: BlockId = "latest") -> int:
        return int(self._call("AssetToken", token, "holderCount", block=block)[0])

    def holders_page(self, token: str, offset: int, limit: int, *, block: BlockId = "latest") -> list[str]:
        """Holders `offset` to `offset + limit`. The token reorders its list when a holder sells out,
        so pages read at different blocks can skip a holder: read them all at one `block`."""
        (page,) = self._call("AssetToken", token, "holdersPage", [offset, limit], block=block)
        return [to_checksum_address(holder) for holder in page]

    def balances_of(
        self, token: str, holders: Sequence[str], snapshot_id: int | None = None, *, block: BlockId = "latest"
    ) -> list[int]:
        addresses = [to_checksum_address(holder) for holder in holders]
        if snapshot_id is None:
            (balances,) = self._call("AssetToken", token, "balancesOf", [addresses], block=block)
        else:
            (balances,) = self._call("AssetToken", token, "balancesOfAt", [addresses, snapshot_id], block=block)
        return [int(balance) for balance in balances]

    def erc20_balance(self, token: str, account: str) -> int:
        return int(self._call("PaymentToken", token, "balanceOf", [to_checksum_address(account)])[0])

    # --- payout contract --------------------------------------------------------------------------
    def payout_contract_info(self, address: str) -> PayoutContractInfo:
        (asset_token,) = self._call("PayoutContract", address, "assetToken")
        (payment_token,) = self._call("PayoutContract", address, "paymentToken")
        (paused,) = self._call("PayoutContract", address, "paused")
        return PayoutContractInfo(
            asset_token=to_checksum_address(asset_token),
            payment_token=to_checksum_address(payment_token),
            paused=bool(paused),
        )

    def payout_contract_admin(self, address: str) -> str:
        """The account allowed to pause, grant roles and withdraw funds."""
        return to_checksum_address(self._call("PayoutContract", address, "admin")[0])

    def is_paid(self, payout_contract: str, distribution_id: bytes, holder: str) -> bool:
        args = [distribution_id, to_checksum_address(holder)]
        return bool(self._call("PayoutContract", payout_contract, "isPaid", args)[0])

    def batch_executed(self, payout_contract: str, batch_id: bytes) -> bool:
        return bool(self._call("PayoutContract", payout_contract, "batchExecuted", [batch_id])[0])

    # --- transactions -----------------------------------------------------------------------------
    def nonce(self, account: str, block: str = "pending") -> int:
        """The next nonce of `account` counting pending transactions (`block="latest"`: mined only)."""
        address = to_checksum_address(account)
        return int(self._rpc(lambda: self.web3.eth.get_transaction_count(address, block)))  # type: ignore[arg-type]

    def fees(self) -> Fees:
        """EIP-1559 fees: twice the latest base fee plus the node's suggested tip, and never below
        the node's gas price (Hedera's JSON-RPC relay has no base fee but a minimum gas price)."""
        block = self._rpc(lambda: self.web3.eth.get_block("latest"))
        tip = int(self._rpc(lambda: self.web3.eth.max_priority_fee))
        gas_price = int(self._rpc(lambda: self.web3.eth.gas_price))
        base_fee = int(block.get("baseFeePerGas", 0))
        return Fees(max_fee_per_gas=max(2 * base_fee + tip, gas_price), max_priority_fee_per_gas=tip)

    def estimate_gas(self, *, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        """Gas the call needs; raises `TransactionReverted` when it would revert."""
        tx: dict[str, Any] = {"from": to_checksum_address(sender), "data": to_hex(data), "value": value}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        return int(self._rpc(lambda: self.web3.eth.estimate_gas(tx)))  # type: ignore[arg-type]

    def call(self, *, to: str, data: bytes, sender: str | None = None, block: BlockId = "latest") -> bytes:
        """`eth_call` against the state at `block` (a number or a tag)."""
        tx: dict[str, Any] = {"to": to_checksum_address(to), "data": to_hex(data)}
        if sender:
            tx["from"] = to_checksum_address(sender)
        return bytes(self._rpc(lambda: self.web3.eth.call(tx, block_identifier=block)))  # type: ignore[arg-type]

    def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast a signed transaction; returns its hash. A node that already knows it is fine."""
        try:
            return to_hex(self.web3.eth.send_raw_transaction(raw))
        except web3_exceptions.Web3RPCError as exc:
            message = str(exc).lower()
            if "already known" in message or "known transaction" in message or "already imported" in message:
                return to_hex(Web3.keccak(raw))
            raise map_exception(exc) from exc
        except Exception as exc:
            raise map_exception(exc) from exc

    def transaction_known(self, tx_hash: str) -> bool:
        """Whether the node knows the transaction (pending in its pool or mined)."""
        try:
            self.web3.eth.get_transaction(HexBytes(tx_hash))
        except web3_exceptions.TransactionNotFound:
            return False
        except Exception as exc:
            raise map_exception(exc) from exc
        return True

    def get_receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of a mined transaction, or None while it is pending or unknown."""
        try:
            receipt = self.web3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except web3_exceptions.TransactionNotFound:
            return None
        except Exception as exc:
            raise map_exception(exc) from exc
        if receipt is None or receipt.get("blockNumber") is None:
            return None
        return Receipt(
            tx_hash=to_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            status="ok" if int(receipt["status"]) == 1 else "failed",
            gas_used=int(receipt["gasUsed"]),
            block_hash=to_hex(receipt["blockHash"]),
            logs=tuple(_raw_log(log) for log in receipt["logs"]),
        )

    def wait_for_receipt(self, tx_hash: str, timeout: float = 30.0, poll: float = 0.1) -> Receipt:
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.get_receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise RpcTimeout(f"no receipt for {tx_hash} within {timeout:.0f}s")
            time.sleep(poll)

    def contract_address(self, tx_hash: str) -> str | None:
        receipt = self._rpc(lambda: self.web3.eth.get_transaction_receipt(HexBytes(tx_hash)))
        address = receipt.get("contractAddress")
        return to_checksum_address(address) if address else None

    def get_logs(
        self, *, address: str | Sequence[str], from_block: int, to_block: int, topics: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        """Raw logs (plain dicts) in an inclusive block range."""
        addresses = [address] if isinstance(address, str) else list(address)
        params: dict[str, Any] = {
            "address": [to_checksum_address(a) for a in addresses],
            "fromBlock": from_block,
            "toBlock": to_block,
        }
        if topics:
            params["topics"] = topics
        logs = self._rpc(lambda: self.web3.eth.get_logs(params))  # type: ignore[arg-type]
        return [_raw_log(log) for log in logs]

    # --- decoding ---------------------------------------------------------------------------------
    def decode_logs(self, receipt_or_logs: Receipt | Iterable[Mapping[str, Any]]) -> list[DecodedEvent]:
        """Decode every log we have an ABI for; logs we cannot decode are skipped (and logged)."""
        logs = receipt_or_logs.logs if isinstance(receipt_or_logs, Receipt) else receipt_or_logs
        decoded = []
        for log in logs:
            try:
                decoded.append(abi.decode_log(log))
            except UndecodableLog as exc:
                logger.info("skipped undecodable log tx=%s reason=%s", log.get("transactionHash"), exc)
        return decoded
