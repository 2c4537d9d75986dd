"""Node and network failures are mapped to typed errors (transient vs permanent), against anvil
and against local HTTP servers that time out or fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_account import Account

from chain import abi
from chain.client import ChainClient
from chain.deploy import send_and_wait
from chain.errors import (
    InsufficientFunds,
    NonceTooHigh,
    NonceTooLow,
    PermanentChainError,
    RpcConnectionError,
    RpcTimeout,
    TransactionReverted,
    TransientChainError,
    UndecodableLog,
    Underpriced,
    classify_message,
)
from chain.localchain import ANVIL_DEV_KEYS, DeployedContracts
from chain.signers import LocalKeySigner
from config.localservices import free_port
from tests.fixtures.chain import AnvilNode


class _SlowOrBrokenRpc(BaseHTTPRequestHandler):
    mode = "slow"

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.mode == "slow":
            time.sleep(1.0)
        self.send_response(503 if self.mode == "broken" else 200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"jsonrpc":"2.0","id":1,"result":"0x1"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=["slow", "broken"])
def bad_rpc(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    handler = type("Handler", (_SlowOrBrokenRpc,), {"mode": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield request.param, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _transfer(signer: LocalKeySigner, client: ChainClient, **overrides: Any) -> bytes:
    fees = client.fees()
    tx = {
        "type": 2, "chainId": client.chain_id(), "nonce": client.nonce(signer.address), "gas": 21_000,
        "maxFeePerGas": fees.max_fee_per_gas, "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        "to": signer.address, "value": 1, "data": b"", **overrides,
    }  # fmt: skip
    return signer.sign_transaction(tx).raw


def test_an_unreachable_node_is_a_transient_connection_error() -> None:
    # given
    client = ChainClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    # when / then
    with pytest.raises(RpcConnectionError) as caught:
        client.block_number()
    assert isinstance(caught.value, TransientChainError)


def test_a_slow_node_times_out_and_a_failing_one_is_a_connection_error(bad_rpc: tuple[str, str]) -> None:
    # given
    mode, url = bad_rpc
    client = ChainClient(url, timeout=0.3)
    # when / then
    with pytest.raises(RpcTimeout if mode == "slow" else RpcConnectionError):
        client.block_number()


def test_node_refusals_are_typed(chain_client: ChainClient, anvil: AnvilNode, deployer: LocalKeySigner) -> None:
    # given
    chain_client.send_raw_transaction(_transfer(deployer, chain_client))
    poor = LocalKeySigner("0x" + bytes(Account.create().key).hex())
    # when / then
    with pytest.raises(NonceTooLow):
        chain_client.send_raw_transaction(_transfer(deployer, chain_client, nonce=0))
    with pytest.raises(Underpriced):
        chain_client.send_raw_transaction(_transfer(deployer, chain_client, maxFeePerGas=1, maxPriorityFeePerGas=1))
    with pytest.raises(InsufficientFunds) as caught:
        chain_client.send_raw_transaction(_transfer(poor, chain_client, nonce=0))
    assert isinstance(caught.value, PermanentChainError)
    anvil.rpc("evm_setAutomine", False)
    pending = _transfer(deployer, chain_client)
    assert chain_client.send_raw_transaction(pending) == chain_client.send_raw_transaction(pending)  # already known
    with pytest.raises(Underpriced, match="replacement"):
        chain_client.send_raw_transaction(
            _transfer(deployer, chain_client, nonce=chain_client.nonce(deployer.address) - 1, value=2)
        )


@pytest.mark.parametrize(
    "message",
    [
        "Nonce too high. Provided nonce: 16, current nonce: 15",  # Hedera's JSON-RPC relay
        "[Request ID: 3ec591b4-9396-49f4-a03f-06c415a7cc6a] Nonce too high. Provided nonce: 16, current nonce: 15",
        "nonce too high",  # geth and others
    ],
)
def test_the_relays_nonce_too_high_is_transient_and_not_a_used_nonce(message: str) -> None:
    # given / when
    error = classify_message(message)
    # then: wait for the lower nonces (never treat it as consumed, never give up)
    assert isinstance(error, NonceTooHigh)
    assert isinstance(error, TransientChainError)
    assert not isinstance(error, NonceTooLow)


def test_a_revert_carries_its_reason(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    send_and_wait(chain_client, deployer, to=contracts.equity_payout, data=abi.encode_pause())
    stranger = LocalKeySigner(ANVIL_DEV_KEYS[1])
    # when / then
    with pytest.raises(TransactionReverted) as caught:
        chain_client.estimate_gas(sender=stranger.address, to=contracts.equity_payout, data=abi.encode_unpause())
    assert caught.value.reason == "only admin"
    assert chain_client.get_receipt("0x" + "00" * 32) is None


def test_forged_truncated_and_unknown_logs_are_undecodable(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    receipt = send_and_wait(chain_client, deployer, to=contracts.equity_payout, data=abi.encode_pause())
    (paused,) = receipt.logs
    forged = [
        {**paused, "topics": ["0x" + "ab" * 32]},  # unknown event
        {**paused, "data": "0x1234"},  # truncated data
        {**paused, "topics": [*paused["topics"], "0x" + "00" * 32]},  # wrong topic count
        {**paused, "topics": []},  # anonymous
        {"topics": paused["topics"]},  # no address
    ]
    # when / then
    assert abi.decode_log(paused).event_name == "Paused"
    for log in forged:
        with pytest.raises(UndecodableLog):
            abi.decode_log(log)
    assert [event.event_name for event in chain_client.decode_logs([*forged, paused])] == ["Paused"]
