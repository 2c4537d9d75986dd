"""Fixtures of the chain suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain.services import register_transaction_handler, unregister_transaction_handler


@pytest.fixture
def handled() -> Iterator[list[tuple[str, str]]]:
    """Records (intent_key, status) for every final state of purpose `test_batch` (the lane tests'
    batches, `tests.chain.factories.batch_intent`)."""
    calls: list[tuple[str, str]] = []
    register_transaction_handler("test_batch", lambda row: calls.append((row.intent_key, row.status)))
    yield calls
    unregister_transaction_handler("test_batch")
