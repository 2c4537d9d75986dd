"""Listener and stored-event services: ensure a listener, enable/disable, reset its cursor, reprocess."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from eth_utils.address import is_address, to_checksum_address

from chain.errors import UndecodableLog
from chain.hedera import address_resolve, looks_like_entity_id
from chain.listener.decoding import args_to_json, decode_log
from chain.listener.engine import run_processor
from chain.listener.models import ChainEvent, EventListener
from chain.listener.types import FetchedLog, MirrorPosition

logger = logging.getLogger(__name__)


class ListenerConflict(ValueError):
    """A listener of that name exists and watches something else."""


def listener_ensure(
    *,
    name: str,
    contract_address: str,
    abi_name: str,
    source: str = EventListener.Source.RPC,
    start_block: int = 0,
    start_timestamp: str = "0",
    confirmations: int | None = None,
    max_block_range: int | None = None,
    hedera_id: str | None = None,
) -> EventListener:
    """The listener called `name`, created if missing (idempotent).

    `contract_address` is a 0x address or a Hedera id (`0.0.4431`), resolved through the Mirror
    Node (`chain.services.address_resolve`: a refusal is `InvalidInput`, an outage `Unavailable`);
    `hedera_id` is the address's id when the caller knows it. An existing listener keeps its cursor
    and settings (an id it lacked is filled in); asking for the same name with another contract,
    ABI or source is a `ListenerConflict`.
    """
    if source not in EventListener.Source.values:
        raise ValueError(f"unknown source {source!r}")
    MirrorPosition.parse_timestamp(start_timestamp)
    address: str
    if is_address(contract_address):
        address = to_checksum_address(contract_address)
    elif isinstance(contract_address, str) and looks_like_entity_id(contract_address):
        resolved = address_resolve(field="contract_address", value=contract_address)
        address, hedera_id = resolved.address, resolved.hedera_id
    else:
        raise ValueError(f"not an address: {contract_address!r}")
    with transaction.atomic():
        listener, created = EventListener.objects.get_or_create(
            name=name,
            defaults={
                "contract_address": address,
                "abi_name": abi_name,
                "source": source,
                "start_block": start_block,
                "start_timestamp": start_timestamp,
                "confirmations": settings.CHAIN_CONFIRMATIONS if confirmations is None else confirmations,
                "max_block_range": max_block_range or 2000,
                "hedera_id": hedera_id,
            },
        )
    if not created and (listener.contract_address, listener.abi_name, listener.source) != (address, abi_name, source):
        raise ListenerConflict(
            f"listener {name!r} already watches {listener.contract_address} ({listener.abi_name}, {listener.source})"
        )
    if not created and hedera_id and listener.hedera_id is None:
        EventListener.objects.filter(pk=listener.pk, hedera_id__isnull=True).update(hedera_id=hedera_id)
        listener.hedera_id = hedera_id
    if created:
        logger.info("listener created listener_id=%s name=%s address=%s source=%s", listener.pk, name, address, source)
    return listener


def listener_set_enabled(*, listener_id: int, enabled: bool) -> None:
    EventListener.objects.filter(pk=listener_id).update(enabled=enabled)


def listener_reset_cursor(*, listener_id: int) -> None:
    """Read the stream again from `start_block` / `start_timestamp`.

    Safe at any time: events already stored are recognised by (transaction hash, log index) and
    neither stored nor processed again; the run re-reads only to find what is missing.
    """
    with transaction.atomic():
        listener = EventListener.objects.select_for_update().get(pk=listener_id)
        listener.last_processed_block = None
        listener.last_processed_timestamp = None
        listener.last_processed_log_index = None
        listener.save(
            update_fields=["last_processed_block", "last_processed_timestamp", "last_processed_log_index", "updated_at"]
        )
    logger.info("listener cursor reset listener_id=%s", listener_id)


def event_reprocess(*, event_id: int) -> ChainEvent:
    """Run the processor of a FAILED, NO_PROCESSOR or UNDECODABLE event again (decoding it again first).

    Locks the event so two operators clicking at once run it once; a PROCESSED event is left alone.
    """
    with transaction.atomic():
        event = ChainEvent.objects.select_for_update().select_related("listener").get(pk=event_id)
        if event.status == ChainEvent.Status.PROCESSED:
            return event
        try:
            decoded = decode_log(event.listener.abi_name, _fetched_log(event), contract_address=event.contract_address)
        except UndecodableLog as exc:
            event.mark_undecodable(str(exc))
            return event
        if event.status == ChainEvent.Status.UNDECODABLE:  # the ABI was fixed since
            event.mark_no_processor(event_name=decoded.event_name, args=args_to_json(decoded.args))
        run_processor(event, decoded)
    logger.info("chain event reprocessed event_id=%s status=%s", event_id, event.status)
    return event


def _fetched_log(event: ChainEvent) -> FetchedLog:
    raw = event.raw_log
    return FetchedLog(
        address=str(raw.get("address", "")),
        topics=tuple(raw.get("topics") or ()),
        data=str(raw.get("data") or "0x"),
        tx_hash=event.tx_hash,
        log_index=event.log_index,
        block_number=event.block_number,
        block_timestamp=event.block_timestamp,
        consensus_timestamp=event.consensus_timestamp,
        raw=raw,
    )
