"""The reference contracts on a real anvil node: tokens, snapshots, batch payouts, bond cash-outs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chain import abi
from chain.client import ChainClient
from chain.contracts.compile import CompileError, compile_contracts, drifted
from chain.deploy import call_contract, deploy_payout_contract, send_and_wait
from chain.errors import TransactionReverted
from chain.localchain import ANVIL_DEV_KEYS, DeployedContracts
from chain.signers import LocalKeySigner
from tests.fixtures.chain import AnvilNode

DIST = os.urandom(32)
E6 = 10**6
E18 = 10**18
PRAGMA = "// SPDX-License-Identifier: Apache-2.0\npragma solidity ^0.8.20;\n"


def _pay(client: ChainClient, signer: LocalKeySigner, payout: str, data: bytes) -> list[tuple[str, dict[str, object]]]:
    receipt = send_and_wait(client, signer, to=payout, data=data)
    return [(event.event_name, event.args) for event in client.decode_logs(receipt)]


def test_committed_artifacts_match_the_sources() -> None:
    # when
    artifacts = compile_contracts()
    # then
    assert set(artifacts) == {"PaymentToken", "AssetToken", "PayoutContract"}
    assert drifted(artifacts) == []
    assert artifacts["PayoutContract"]["bytecode"].startswith("0x60")


def test_a_source_imports_another_from_inside_its_directory(tmp_path: Path) -> None:
    # given
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "Base.sol").write_text(
        PRAGMA + "abstract contract Base { function one() external pure returns (uint256) { return 1; } }\n"
    )
    (tmp_path / "Token.sol").write_text(PRAGMA + 'import {Base} from "./lib/Base.sol";\ncontract Token is Base {}\n')
    # when
    artifacts = compile_contracts(tmp_path)
    # then
    assert set(artifacts) == {"Token"}
    assert [entry["name"] for entry in artifacts["Token"]["abi"]] == ["one"]


def test_an_import_from_outside_the_sources_directory_is_refused(tmp_path: Path) -> None:
    # given
    (tmp_path / "Outside.sol").write_text(PRAGMA + "contract Outside {}\n")
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "Token.sol").write_text(PRAGMA + f'import "{tmp_path / "Outside.sol"}";\ncontract Token {{}}\n')
    # when / then
    with pytest.raises(CompileError, match="outside"):
        compile_contracts(sources)


def test_deployed_tokens_report_their_details_holders_and_balances(
    chain_client: ChainClient, contracts: DeployedContracts
) -> None:
    # when
    equity = chain_client.token_details(contracts.equity_token)
    bond = chain_client.token_details(contracts.bond_token)
    first_page = chain_client.holders_page(contracts.equity_token, 0, 3)
    second_page = chain_client.holders_page(contracts.equity_token, 3, 3)
    # then
    assert (equity.name, equity.symbol, equity.decimals, equity.asset_type, equity.maturity_date) == (
        "Local Equity", "LEQ", 18, "EQUITY", None,
    )  # fmt: skip
    assert bond.asset_type == "BOND_FIXED_RATE"
    assert bond.maturity_date is not None
    assert chain_client.holder_count(contracts.equity_token) == 5
    assert first_page + second_page == list(contracts.holders)
    assert chain_client.balances_of(contracts.equity_token, contracts.holders) == [i * 100 * E18 for i in range(1, 6)]
    info = chain_client.payout_contract_info(contracts.equity_payout)
    assert (info.asset_token, info.payment_token, info.paused) == (
        contracts.equity_token,
        contracts.payment_token,
        False,
    )


def test_snapshots_keep_balances_as_they_were_and_events_announce_changes(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    holder = contracts.holders[0]
    receipt = call_contract(chain_client, deployer, "AssetToken", contracts.equity_token, "setDividend", [1, 5 * E6])
    (dividend,) = [e for e in chain_client.decode_logs(receipt) if e.event_name == "DividendSet"]
    snapshot_id = dividend.args["snapshotId"]
    # when
    minted = call_contract(chain_client, deployer, "AssetToken", contracts.equity_token, "mint", [holder, 7 * E18])
    # then
    assert chain_client.balances_of(contracts.equity_token, [holder], snapshot_id=snapshot_id) == [100 * E18]
    assert chain_client.balances_of(contracts.equity_token, [holder]) == [107 * E18]
    assert ("HolderBalanceUpdated", {"holder": holder, "newBalance": 107 * E18}) in [
        (e.event_name, e.args) for e in chain_client.decode_logs(minted)
    ]


def test_a_batch_pays_its_holders_and_balances_move(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    holders, amounts = list(contracts.holders[:2]), [10 * E6, 20 * E6]
    before = chain_client.erc20_balance(contracts.payment_token, contracts.equity_payout)
    # when
    events = _pay(
        chain_client,
        deployer,
        contracts.equity_payout,
        abi.encode_execute_batch(DIST, b"\1" * 32, 2, holders, amounts, distribution_total=30 * E6),
    )
    # then
    assert [chain_client.erc20_balance(contracts.payment_token, h) for h in holders] == amounts
    assert chain_client.erc20_balance(contracts.payment_token, contracts.equity_payout) == before - 30 * E6
    assert all(chain_client.is_paid(contracts.equity_payout, DIST, h) for h in holders)
    assert chain_client.batch_executed(contracts.equity_payout, b"\1" * 32)
    names = [name for name, _ in events if name != "Transfer"]
    assert names == ["DistributionRegistered", "HolderPaid", "HolderPaid", "PayoutCompleted", "DistributionExecuted"]
    assert ("DistributionRegistered", {"distributionId": DIST, "totalAmount": 30 * E6, "holdersCount": 2}) in events
    assert ("PayoutCompleted", {"batchId": b"\1" * 32, "successfulPayments": 2, "failedPayments": 0}) in events
    assert ("DistributionExecuted", {"distributionId": DIST, "totalAmount": 30 * E6, "holdersCount": 2}) in events


def test_the_same_batch_id_is_refused_on_chain(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    data = abi.encode_execute_batch(DIST, b"\2" * 32, 5, [contracts.holders[0]], [E6], distribution_total=2 * E6)
    send_and_wait(chain_client, deployer, to=contracts.equity_payout, data=data)
    again = abi.encode_execute_batch(DIST, b"\2" * 32, 5, [contracts.holders[1]], [E6], distribution_total=2 * E6)
    # when / then
    with pytest.raises(TransactionReverted, match="batch already executed"):
        chain_client.estimate_gas(sender=deployer.address, to=contracts.equity_payout, data=again)
    assert chain_client.erc20_balance(contracts.payment_token, contracts.holders[1]) == 0


def test_an_already_paid_holder_is_reported_failed_and_not_paid_twice(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    holder = contracts.holders[0]
    send_and_wait(
        chain_client, deployer, to=contracts.equity_payout,
        data=abi.encode_execute_batch(DIST, b"\3" * 32, 2, [holder], [5 * E6], distribution_total=11 * E6),
    )  # fmt: skip
    # when
    events = _pay(
        chain_client, deployer, contracts.equity_payout,
        abi.encode_execute_batch(
            DIST, b"\4" * 32, 2, [holder, contracts.holders[1]], [5 * E6, 6 * E6], distribution_total=11 * E6
        ),
    )  # fmt: skip
    # then
    assert chain_client.erc20_balance(contracts.payment_token, holder) == 5 * E6
    assert ("HolderPaymentFailed", {
        "distributionId": DIST, "batchId": b"\4" * 32, "holder": holder, "amount": 5 * E6, "reason": 2,
    }) in events  # fmt: skip
    assert ("PayoutCompleted", {"batchId": b"\4" * 32, "successfulPayments": 1, "failedPayments": 1}) in events
    assert ("DistributionExecuted", {"distributionId": DIST, "totalAmount": 11 * E6, "holdersCount": 2}) in events


def test_insufficient_balance_is_reported_per_holder(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    funded = chain_client.erc20_balance(contracts.payment_token, contracts.equity_payout)
    holders = list(contracts.holders[:3])
    amounts = [funded - E6, 2 * E6, E6]  # the second one no longer fits, the third does
    # when
    events = _pay(
        chain_client,
        deployer,
        contracts.equity_payout,
        abi.encode_execute_batch(DIST, b"\5" * 32, 3, holders, amounts, distribution_total=sum(amounts)),
    )
    # then
    outcomes = [(name, args["holder"]) for name, args in events if name in ("HolderPaid", "HolderPaymentFailed")]
    assert outcomes == [("HolderPaid", holders[0]), ("HolderPaymentFailed", holders[1]), ("HolderPaid", holders[2])]
    failed = next(args for name, args in events if name == "HolderPaymentFailed")
    assert failed["reason"] == 1
    assert not chain_client.is_paid(contracts.equity_payout, DIST, holders[1])
    assert "DistributionExecuted" not in [name for name, _ in events]


def test_pause_blocks_execution_until_unpaused(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    send_and_wait(chain_client, deployer, to=contracts.equity_payout, data=abi.encode_pause())
    data = abi.encode_execute_batch(DIST, b"\6" * 32, 1, [contracts.holders[0]], [E6], distribution_total=E6)
    # when / then
    assert chain_client.payout_contract_info(contracts.equity_payout).paused
    with pytest.raises(TransactionReverted, match="paused"):
        chain_client.estimate_gas(sender=deployer.address, to=contracts.equity_payout, data=data)
    send_and_wait(chain_client, deployer, to=contracts.equity_payout, data=abi.encode_unpause())
    send_and_wait(chain_client, deployer, to=contracts.equity_payout, data=data)
    assert chain_client.erc20_balance(contracts.payment_token, contracts.holders[0]) == E6


def test_only_the_payout_role_may_execute(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    stranger = LocalKeySigner(ANVIL_DEV_KEYS[1])
    data = abi.encode_execute_batch(DIST, b"\7" * 32, 1, [contracts.holders[0]], [E6], distribution_total=E6)
    # when / then
    with pytest.raises(TransactionReverted, match="caller lacks PAYOUT_ROLE"):
        chain_client.estimate_gas(sender=stranger.address, to=contracts.equity_payout, data=data)
    with pytest.raises(TransactionReverted, match="only admin"):
        chain_client.estimate_gas(sender=stranger.address, to=contracts.equity_payout, data=abi.encode_pause())
    call_contract(
        chain_client, deployer, "PayoutContract", contracts.equity_payout, "grantPayoutRole", [stranger.address]
    )
    send_and_wait(chain_client, stranger, to=contracts.equity_payout, data=data)
    assert chain_client.is_paid(contracts.equity_payout, DIST, contracts.holders[0])


def test_bond_cash_out_pays_and_redeems_at_maturity_only(
    anvil: AnvilNode, chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    holders = list(contracts.holders[:2])
    bonds = chain_client.balances_of(contracts.bond_token, holders)
    data = abi.encode_execute_bond_cash_out(
        DIST, b"\x08" * 32, 2, holders, [100 * E6, 200 * E6], distribution_total=300 * E6, token_amounts=bonds
    )
    with pytest.raises(TransactionReverted, match="bond not matured"):
        chain_client.estimate_gas(sender=deployer.address, to=contracts.bond_payout, data=data)
    # when
    anvil.rpc("evm_setNextBlockTimestamp", contracts.bond_maturity)
    anvil.rpc("evm_mine")
    events = _pay(chain_client, deployer, contracts.bond_payout, data)
    # then
    assert [chain_client.erc20_balance(contracts.payment_token, h) for h in holders] == [100 * E6, 200 * E6]
    assert chain_client.balances_of(contracts.bond_token, holders) == [0, 0]
    assert chain_client.holder_count(contracts.bond_token) == 3
    assert [args["newBalance"] for name, args in events if name == "HolderBalanceUpdated"] == [0, 0]


def test_an_equity_payout_contract_cannot_cash_out(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # given
    data = abi.encode_execute_bond_cash_out(
        DIST, b"\x09" * 32, 1, [contracts.holders[0]], [E6], distribution_total=E6, token_amounts=[1]
    )
    # when / then
    with pytest.raises(TransactionReverted, match="bond not matured"):
        chain_client.estimate_gas(sender=deployer.address, to=contracts.equity_payout, data=data)


def test_deploy_payout_contract_links_an_asset_the_signer_owns(
    chain_client: ChainClient, contracts: DeployedContracts, deployer: LocalKeySigner
) -> None:
    # when
    address = deploy_payout_contract(chain_client, deployer, contracts.bond_token, contracts.payment_token)
    # then
    info = chain_client.payout_contract_info(address)
    assert (info.asset_token, info.payment_token) == (contracts.bond_token, contracts.payment_token)
    (linked,) = abi.decode_result(
        "AssetToken", "payoutContract",
        chain_client.call(to=contracts.bond_token, data=abi.encode_call("AssetToken", "payoutContract", [])),
    )  # fmt: skip
    assert linked == address
