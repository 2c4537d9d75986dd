"""Hedera ids to EVM addresses and back, through the fake Mirror Node (whose answers are checked
against the real API's definition) and without a Mirror Node."""

from __future__ import annotations

import pytest
import requests

from chain.hedera import (
    MAINNET,
    PUBLIC_LEDGERS,
    EntityId,
    HederaIdError,
    MirrorEntities,
    MirrorNodeUnavailable,
    ResolvedAddress,
    UnknownHederaEntity,
    resolve,
)
from chain.localchain import DeployedContracts
from tests.fixtures.mirror_node import FakeMirrorNode

pytestmark = pytest.mark.chain


def _resolve(text: str, mirror: FakeMirrorNode | None) -> ResolvedAddress:
    return resolve(text, ledgers=PUBLIC_LEDGERS, mirror=MirrorEntities(mirror.url) if mirror else None)


def test_a_contract_id_is_the_contracts_evm_address_not_its_long_zero_form(
    mirror_node: FakeMirrorNode, contracts: DeployedContracts
) -> None:
    # given the payment token contract, which the Mirror Node knows as 0.0.N
    entity = mirror_node.contract_id(contracts.payment_token)
    num = int(entity.rsplit(".", 1)[1])
    # when named by its id, bare or with its (mainnet) checksum
    bare = _resolve(entity, mirror_node)
    checked = _resolve(f"{entity}-{EntityId(0, 0, num).checksum(MAINNET)}", mirror_node)
    # then both give the address its deployment got
    assert bare == checked == ResolvedAddress(contracts.payment_token, entity)
    assert bare.address != EntityId(0, 0, num).long_zero_address
    assert mirror_node.requests[0] == f"/api/v1/contracts/{entity}"


def test_an_hts_token_id_is_its_long_zero_address(mirror_node: FakeMirrorNode) -> None:
    # given an HTS token the Mirror Node knows (no contract has its id)
    token = mirror_node.add_token(name="USD Coin", symbol="USDC", decimals=6)
    # when
    resolved = _resolve(token, mirror_node)
    # then
    num = int(token.rsplit(".", 1)[1])
    assert resolved == ResolvedAddress(EntityId(0, 0, num).long_zero_address, token)
    assert mirror_node.requests == [f"/api/v1/contracts/{token}", f"/api/v1/tokens/{token}"]


def test_an_address_gets_its_id_when_the_mirror_node_knows_it(
    mirror_node: FakeMirrorNode, contracts: DeployedContracts
) -> None:
    # given a contract and an HTS token
    token = mirror_node.add_token(name="USD Coin", symbol="USDC", decimals=6)
    token_address = _resolve(token, mirror_node).address
    # when they are named by address
    contract = _resolve(contracts.equity_token, mirror_node)
    hts = _resolve(token_address.lower(), mirror_node)
    account = _resolve(contracts.deployer, mirror_node)
    # then the contract and the token have ids; an account (no contract, no token) has none
    assert contract == ResolvedAddress(contracts.equity_token, mirror_node.contract_id(contracts.equity_token))
    assert hts == ResolvedAddress(token_address, token)
    assert account == ResolvedAddress(contracts.deployer, None)


def test_an_id_the_mirror_node_does_not_know_is_refused(mirror_node: FakeMirrorNode) -> None:
    with pytest.raises(UnknownHederaEntity, match="does not know 0.0.987654"):
        _resolve("0.0.987654", mirror_node)


def test_an_id_the_mirror_node_refuses_is_a_hedera_id_error(mirror_node: FakeMirrorNode) -> None:
    # given a num of 11 digits: fits an EVM address, but the Mirror Node takes at most 10 digits
    with pytest.raises(HederaIdError, match="Invalid parameter: contractIdOrAddress"):
        _resolve("0.0.12345678901", mirror_node)


def test_without_a_mirror_node_an_id_is_its_long_zero_form_and_only_a_long_zero_address_has_an_id(
    contracts: DeployedContracts,
) -> None:
    assert _resolve("0.0.4431", None) == ResolvedAddress("0x000000000000000000000000000000000000114f", "0.0.4431")
    assert _resolve("0x000000000000000000000000000000000000114F", None).hedera_id == "0.0.4431"
    assert _resolve(contracts.equity_token, None) == ResolvedAddress(contracts.equity_token, None)


def test_a_mirror_node_that_is_down_or_failing_is_unavailable(mirror_node: FakeMirrorNode) -> None:
    # when nothing listens
    with pytest.raises(MirrorNodeUnavailable):
        resolve("0.0.5", ledgers=PUBLIC_LEDGERS, mirror=MirrorEntities("http://127.0.0.1:9"))
    # when it answers 503, then 429
    for status in (503, 429):
        mirror_node.fail_with = status
        with pytest.raises(MirrorNodeUnavailable, match=str(status)):
            _resolve("0.0.5", mirror_node)


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/contracts/0.0.12345678901", "contractIdOrAddress"),
        ("/api/v1/contracts/0xnothex", "contractIdOrAddress"),
        ("/api/v1/tokens/0.0", "tokenId"),
        ("/api/v1/tokens/0x000000000000000000000000000000000000114f", "tokenId"),
    ],
)
def test_the_fake_refuses_what_the_real_definition_refuses(
    mirror_node: FakeMirrorNode, path: str, parameter: str
) -> None:
    response = requests.get(mirror_node.url + path, timeout=10)
    assert response.status_code == 400
    assert response.json() == {"_status": {"messages": [{"message": f"Invalid parameter: {parameter}"}]}}


def test_the_fake_answers_not_found_like_the_real_one(mirror_node: FakeMirrorNode) -> None:
    for path in ("/api/v1/contracts/0.0.987654", "/api/v1/tokens/0.0.987654"):
        response = requests.get(mirror_node.url + path, timeout=10)
        assert (response.status_code, response.json()) == (404, {"_status": {"messages": [{"message": "Not found"}]}})
