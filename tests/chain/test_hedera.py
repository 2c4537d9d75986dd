"""Hedera entity ids: HIP-15 syntax and checksums, the long-zero EVM form, and what an input is."""

from __future__ import annotations

import pytest

from chain.hedera import (
    MAINNET,
    TESTNET,
    EntityId,
    HederaIdError,
    entity_of_long_zero,
    ledger_ids,
    parse_address_input,
    parse_entity_id,
)

# The examples HIP-15 lists: every implementation must give these checksums.
HIP15_LEDGER_00 = [
    "0.0.1-dfkxr", "0.0.4-cjcuq", "0.0.5-ktach", "0.0.6-tcxjy", "0.0.12-uuuup", "0.0.123-vfmkw",
    "0.0.1234567890-zbhlt", "12.345.6789-aoyyt", "1.23.456-adpbr",
]  # fmt: skip
HIP15_LEDGER_A1FF01 = [
    "0.0.1-xzlgq", "0.0.4-xdddp", "0.0.5-fnalg", "0.0.6-nwxsx", "0.0.12-povdo", "0.0.123-pzmtv",
    "0.0.1234567890-tvhus", "12.345.6789-vizhs", "1.23.456-uxpkq",
]  # fmt: skip
# ... and inputs it says must be refused.
HIP15_INVALID = [
    "0.0.123-abcde", "0.00.123", "0.0.0123-vfmkw", "0.0.123-VFMKW", "0.0.123-vFmKw", "0.0.123#vfmkw",
    "0.0.123vfmkw", "0.0.123 - vfmkw", "0.123", "0.0.123.", "0.0.123-vf", "0.0.123-vfm-kw", "0.0.123-vfmkwxxxx",
]  # fmt: skip


@pytest.mark.parametrize(("ledger", "examples"), [(b"\x00", HIP15_LEDGER_00), (b"\xa1\xff\x01", HIP15_LEDGER_A1FF01)])
def test_checksums_are_the_ones_hip_15_lists(ledger: bytes, examples: list[str]) -> None:
    for example in examples:
        plain, _, checksum = example.partition("-")
        # when
        entity = parse_entity_id(example, ledgers=(ledger,))
        # then
        assert entity.checksum(ledger) == checksum
        assert str(entity) == plain


@pytest.mark.parametrize("text", HIP15_INVALID)
def test_inputs_hip_15_refuses_are_refused(text: str) -> None:
    with pytest.raises(HederaIdError):
        parse_entity_id(text, ledgers=(MAINNET,))


def test_a_checksum_of_another_network_is_refused_once_the_network_is_known() -> None:
    # given 0.0.123 written with its testnet checksum
    testnet_written = "0.0.123-" + EntityId(0, 0, 123).checksum(TESTNET)
    # then it is refused on mainnet, accepted on testnet, and accepted when the network is not configured
    with pytest.raises(HederaIdError, match="checksum"):
        parse_entity_id(testnet_written, ledgers=ledger_ids("mainnet"))
    assert parse_entity_id(testnet_written, ledgers=ledger_ids("testnet")) == EntityId(0, 0, 123)
    assert parse_entity_id(testnet_written, ledgers=ledger_ids("")) == EntityId(0, 0, 123)


def test_ledger_ids_are_named_or_hex_and_anything_else_is_refused() -> None:
    assert ledger_ids("mainnet") == (b"\x00",)
    assert ledger_ids("previewnet") == (b"\x02",)
    assert ledger_ids("0xa1ff01") == (b"\xa1\xff\x01",)
    assert ledger_ids("") == (b"\x00", b"\x01", b"\x02")
    with pytest.raises(ValueError, match="HEDERA_LEDGER_ID"):
        ledger_ids("moonnet")


def test_the_long_zero_form_is_shard_realm_num_big_endian_in_4_8_8_bytes() -> None:
    assert EntityId(0, 0, 4431).long_zero_address == "0x000000000000000000000000000000000000114f"  # 4431, EIP-55 cased
    assert EntityId(1, 2, 3).long_zero_address == "0x0000000100000000000000020000000000000003"
    assert entity_of_long_zero("0x000000000000000000000000000000000000114f") == EntityId(0, 0, 4431)
    # an ordinary address, and the zero address, name no entity
    assert entity_of_long_zero("0x5FbDB2315678afecb367f032d93F642f64180aa3") is None
    assert entity_of_long_zero("0x" + "00" * 20) is None


def test_ids_too_large_for_the_long_zero_form_are_refused() -> None:
    with pytest.raises(HederaIdError, match="too large"):
        parse_entity_id(f"0.0.{2**64}", ledgers=(MAINNET,))
    with pytest.raises(HederaIdError, match="too large"):
        parse_entity_id(f"{2**32}.0.1", ledgers=(MAINNET,))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0x5fbdb2315678afecb367f032d93f642f64180aa3", "0x5FbDB2315678afecb367f032d93F642f64180aa3"),
        ("0.0.4431", EntityId(0, 0, 4431)),
        (" 0.0.123-vfmkw ", EntityId(0, 0, 123)),
    ],
)
def test_an_input_is_either_an_evm_address_or_a_hedera_id(text: str, expected: object) -> None:
    assert parse_address_input(text, ledgers=(MAINNET,)) == expected


@pytest.mark.parametrize("text", ["", "0x123", "0.0", "0.0.-1", "0.0.1e3", "token", 42])
def test_anything_else_is_a_hedera_id_error_saying_what_is_expected(text: object) -> None:
    with pytest.raises(HederaIdError, match="0x address or a Hedera id"):
        parse_address_input(text, ledgers=(MAINNET,))  # type: ignore[arg-type]
