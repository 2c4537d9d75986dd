"""The JSON-RPC client's contract reads pinned to a block, on a real anvil node."""

from __future__ import annotations

from chain import abi
from chain.client import ChainClient
from chain.localchain import DeployedContracts
from tests.fixtures.chain import AnvilNode

E18 = 10**18


def test_reads_pinned_to_an_older_block_see_the_holders_and_balances_as_they_were_then(
    anvil: AnvilNode, chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # given the equity token's five holders at a block, then the first sells out to the second
    token, holders = contracts.equity_token, list(contracts.holders)
    before = chain_client.block_number()
    anvil.send_as(holders[0], to=token, data=abi.encode_call("AssetToken", "transfer", [holders[1], 100 * E18]))
    # when
    count_then = chain_client.holder_count(token, block=before)
    page_then = chain_client.holders_page(token, 0, 10, block=before)
    balances_then = chain_client.balances_of(token, holders, block=before)
    raw_then = chain_client.call(to=token, data=abi.encode_call("AssetToken", "balanceOf", [holders[0]]), block=before)
    # then the pinned reads see the old state, the latest reads the swap-and-pop that followed
    assert (count_then, chain_client.holder_count(token)) == (5, 4)
    assert page_then == holders
    assert chain_client.holders_page(token, 0, 10, block="latest") == [holders[4], *holders[1:4]]
    assert balances_then == [i * 100 * E18 for i in range(1, 6)]
    assert chain_client.balances_of(token, holders) == [0, 300 * E18, 300 * E18, 400 * E18, 500 * E18]
    assert abi.decode_result("AssetToken", "balanceOf", raw_then) == (100 * E18,)
    assert chain_client.balances_of(token, holders[:1], block=before + 1) == [0]
