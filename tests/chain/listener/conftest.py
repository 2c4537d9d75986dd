"""Fixtures of the listener suite: the RPC proxy, settings pointing at it and the fake Mirror Node."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pytest_django.fixtures import Settings

from chain.listener import registry
from tests.fixtures.chain import AnvilNode
from tests.fixtures.mirror_node import FakeMirrorNode
from tests.fixtures.rpc_proxy import RpcProxy


@pytest.fixture
def anvil_rpc_url(anvil: AnvilNode, chain_client: object) -> str:
    """The session's anvil, reverted after the test (through `chain_client`)."""
    return anvil.url


@pytest.fixture
def rpc_proxy(anvil_rpc_url: str) -> Iterator[RpcProxy]:
    proxy = RpcProxy(anvil_rpc_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def listener_settings(chain_settings: Settings, rpc_proxy: RpcProxy, mirror_node: FakeMirrorNode) -> Settings:
    """The listener reads the chain through the proxy and the Mirror Node from the fake; no confirmations."""
    chain_settings.CHAIN_RPC_URL = rpc_proxy.url
    chain_settings.HEDERA_MIRROR_URL = mirror_node.url
    chain_settings.CHAIN_CONFIRMATIONS = 0
    return chain_settings


@pytest.fixture(autouse=True)
def _isolated_processor_registry() -> Iterator[None]:
    """Listener tests register their own processors: hide the apps' ones (payouts registers
    HolderPaid and others in ready()) for the test, and put them back afterwards."""
    with registry.event_processors_isolated():
        yield


@pytest.fixture
def processors() -> Iterator[Callable[[str, str, registry.EventProcessor], None]]:
    """Register processors for one test; they are removed afterwards."""
    keys: list[tuple[str, str]] = []

    def register(abi_name: str, event_name: str, processor: registry.EventProcessor) -> None:
        registry.register_event_processor(abi_name, event_name, processor)
        keys.append((abi_name, event_name))

    yield register
    for key in keys:
        registry.unregister_event_processor(*key)
