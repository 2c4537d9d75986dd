"""The local chain for `make run`: anvil by pid, contracts deployed once and kept across restarts."""

from __future__ import annotations

from pathlib import Path

from chain.client import ChainClient
from chain.localchain import chain_file, ensure_local_chain, read_chain_file


def test_the_local_chain_keeps_its_contracts_across_restarts(tmp_path: Path) -> None:
    # given
    service, first = ensure_local_chain(tmp_path)
    try:
        assert ChainClient(service.url).holder_count(first.equity_token) == 5
    finally:
        service.stop()
    # when
    service, second = ensure_local_chain(tmp_path)
    try:
        # then
        client = ChainClient(service.url)
        assert (second.payment_token, second.equity_payout) == (first.payment_token, first.equity_payout)
        assert client.erc20_balance(second.payment_token, second.equity_payout) > 0
        assert read_chain_file(chain_file(tmp_path)) == second
    finally:
        service.stop()
    assert service.process.poll() is not None
