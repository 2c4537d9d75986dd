"""Fixtures of the listener suite: a chain, the RPC proxy, settings pointing at them, processor cleanup."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from chain.listener import registry
from config.localservices import free_port, wait_for_port
from tests.fixtures.mirror_node import FakeMirrorNode
from tests.fixtures.rpc_proxy import RpcProxy

ANVIL = Path(__file__).resolve().parents[3] / "node_modules" / ".bin" / "anvil"


@pytest.fixture
def anvil_rpc_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([str(ANVIL), "--port", str(port), "--silent"])
    try:
        wait_for_port(port, process, 15, "anvil")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def rpc_proxy(anvil_rpc_url: str) -> Iterator[RpcProxy]:
    proxy = RpcProxy(anvil_rpc_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def chain_settings(settings: Settings, rpc_proxy: RpcProxy, mirror_node: FakeMirrorNode) -> Settings:
    """The listener reads the chain through the proxy and the Mirror Node from the fake; no confirmations."""
    settings.CHAIN_RPC_URL = rpc_proxy.url
    settings.HEDERA_MIRROR_URL = mirror_node.url
    settings.CHAIN_CONFIRMATIONS = 0
    return settings


@pytest.fixture
def processors() -> Iterator[Callable[[str, registry.EventProcessor], None]]:
    """Register processors for one test; they are removed afterwards."""
    names: list[str] = []

    def register(event_name: str, processor: registry.EventProcessor) -> None:
        registry.register_event_processor(event_name, processor)
        names.append(event_name)

    yield register
    for name in names:
        registry.unregister_event_processor(name)
