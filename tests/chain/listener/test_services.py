"""listener_ensure is idempotent and refuses to repoint a listener; the registry keeps one processor per event."""

from __future__ import annotations

import pytest

from chain.listener import ListenerConflict, listener_ensure, register_event_processor
from chain.listener.registry import unregister_event_processor
from chain.models import EventListener

pytestmark = pytest.mark.django_db

TOKEN = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"


def test_ensure_creates_once_and_returns_the_same_listener() -> None:
    # when
    first = listener_ensure(name="token", contract_address=TOKEN, abi_name="AssetToken", start_block=7)
    second = listener_ensure(name="token", contract_address=TOKEN.upper().replace("0X", "0x"), abi_name="AssetToken")
    # then
    assert first.pk == second.pk
    assert EventListener.objects.count() == 1
    assert (first.contract_address, first.start_block) == ("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", 7)


def test_ensure_refuses_another_contract_under_the_same_name() -> None:
    # given
    listener_ensure(name="token", contract_address=TOKEN, abi_name="AssetToken")
    # when / then
    with pytest.raises(ListenerConflict, match="already watches"):
        listener_ensure(name="token", contract_address="0x" + "11" * 20, abi_name="AssetToken")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"contract_address": "0x1234"}, "not an address"),
        ({"source": "CARRIER_PIGEON"}, "unknown source"),
        ({"source": "MIRROR_NODE", "start_timestamp": "yesterday"}, "seconds.nanoseconds"),
    ],
)
def test_ensure_rejects_bad_input(options: dict[str, str], message: str) -> None:
    arguments = {"name": "x", "contract_address": TOKEN, "abi_name": "AssetToken", **options}
    with pytest.raises(ValueError, match=message):
        listener_ensure(**arguments)  # type: ignore[arg-type]
    assert EventListener.objects.count() == 0


def test_one_processor_per_event_name() -> None:
    # given
    def first(event: object) -> None: ...

    def second(event: object) -> None: ...

    register_event_processor("AssetToken", "Test", first)
    try:
        # then registering it again is harmless, another one is refused
        register_event_processor("AssetToken", "Test", first)
        with pytest.raises(ValueError, match="already registered"):
            register_event_processor("AssetToken", "Test", second)
    finally:
        unregister_event_processor("AssetToken", "Test")
