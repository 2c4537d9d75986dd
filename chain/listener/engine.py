"""The polling engine: read a bounded page after the cursor, store, dispatch, advance; repeat.

Network I/O (RPC, Mirror Node) happens outside any database transaction. Each page is then
committed in ONE transaction that locks the listener row, checks that the cursor is still where
the page started (compare-and-set: a concurrent poller that got there first makes this one stop),
stores the page's events (unique by transaction hash and log index, so storing twice is a no-op),
runs each event's processor in a savepoint, and moves the cursor to the end of the page. A crash
anywhere leaves either the whole page committed or none of it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from chain.errors import UndecodableLog
from chain.events import DecodedEvent
from chain.listener.decoding import args_to_json, decode_log
from chain.listener.mirror import MirrorNodeClient, MirrorNodeError, position_of
from chain.listener.models import ChainEvent, EventListener
from chain.listener.registry import get_event_processor
from chain.listener.rpc import RpcLogSource, RpcRequestFailed, RpcSourceError
from chain.listener.types import FetchedLog, MirrorPosition, PollResult

logger = logging.getLogger(__name__)

MAX_PAGES_PER_POLL = 50
ERROR_MAX_CHARS = 2000

Position = tuple[int | None, str | None, int | None]


def fetch_commit_seam(listener_id: int, logs: list[FetchedLog]) -> None:
    """Runs after a page is fetched and before it is committed; does nothing.

    It names the most delicate instant of a poll so that reliability tests can make it raise
    (a crash between reading the chain and writing the database) and check nothing was lost.
    """


def listener_poll(*, listener_id: int) -> PollResult:
    """Bring one listener up to date (at most `MAX_PAGES_PER_POLL` pages; `more` says if it stopped early).

    Source failures (RPC down, Mirror Node errors) are recorded on the listener and returned in
    `PollResult.error`; the cursor stays where the last committed page left it.
    """
    listener = EventListener.objects.get(pk=listener_id)
    result = PollResult(listener_id=listener_id)
    if not listener.enabled:
        result.skipped = "disabled"
        return result
    try:
        if listener.source == EventListener.Source.RPC:
            _poll_rpc(listener, result)
        else:
            _poll_mirror(listener, result)
    except (RpcSourceError, MirrorNodeError) as exc:
        result.error = str(exc)[:ERROR_MAX_CHARS]
        _record_failure(listener_id, result.error)
        logger.warning("listener poll failed listener_id=%s error=%s", listener_id, result.error)
    except Exception as exc:
        _record_failure(listener_id, f"{type(exc).__name__}: {exc}")
        raise
    else:
        if not result.skipped:
            EventListener.objects.filter(pk=listener_id).update(
                last_polled_at=timezone.now(), last_success_at=timezone.now(), last_error=""
            )
    logger.info("listener polled listener_id=%s %s", listener_id, result.summary())
    return result


def _record_failure(listener_id: int, message: str) -> None:
    EventListener.objects.filter(pk=listener_id).update(
        last_polled_at=timezone.now(), last_error=message[:ERROR_MAX_CHARS]
    )


def _position(listener: EventListener) -> Position:
    return (listener.last_processed_block, listener.last_processed_timestamp, listener.last_processed_log_index)


# --- JSON-RPC source -------------------------------------------------------------------------------
def _poll_rpc(listener: EventListener, result: PollResult) -> None:
    source = RpcLogSource(settings.CHAIN_RPC_URL, timeout=settings.CHAIN_RPC_TIMEOUT)
    head = source.head()
    EventListener.objects.filter(pk=listener.pk).update(head_block=head)
    safe = head - listener.confirmations
    cursor = listener.last_processed_block if listener.last_processed_block is not None else listener.start_block - 1
    block_range = max(1, listener.max_block_range)
    while cursor < safe:
        if result.pages >= MAX_PAGES_PER_POLL:
            result.more = True
            return
        from_block, to_block = cursor + 1, min(cursor + block_range, safe)
        try:
            logs = source.get_logs(listener.contract_address, from_block, to_block)
        except RpcRequestFailed as exc:
            if to_block == from_block:
                raise
            block_range = max(1, (to_block - from_block + 1) // 2)
            logger.info(
                "eth_getLogs failed, halving range listener_id=%s from=%s to=%s new_range=%s error=%s",
                listener.pk, from_block, to_block, block_range, exc,
            )  # fmt: skip
            continue
        logs = _with_block_timestamps(source, logs)
        expected = _position(listener)
        new = (to_block, None, None)
        if not _commit_page(listener, expected=expected, new=new, logs=logs, result=result):
            return
        listener.last_processed_block = to_block
        cursor = to_block
        result.pages += 1
        block_range = min(max(1, listener.max_block_range), block_range * 2)


def _with_block_timestamps(source: RpcLogSource, logs: list[FetchedLog]) -> list[FetchedLog]:
    """Logs carry `blockTimestamp` on recent nodes; otherwise ask once per block that has logs."""
    missing = sorted({log.block_number for log in logs if log.block_timestamp is None})
    if not missing:
        return logs
    stamps = {number: source.block_timestamp(number) for number in missing}
    return [
        log if log.block_timestamp is not None else _replace_timestamp(log, stamps[log.block_number]) for log in logs
    ]


def _replace_timestamp(log: FetchedLog, stamp: dt.datetime) -> FetchedLog:
    return replace(log, block_timestamp=stamp)


# --- Hedera Mirror Node source ---------------------------------------------------------------------
def _poll_mirror(listener: EventListener, result: PollResult) -> None:
    client = MirrorNodeClient(settings.HEDERA_MIRROR_URL, timeout=settings.CHAIN_RPC_TIMEOUT)
    position = _mirror_position(listener)
    url: str | None = client.first_page_url(
        listener.contract_address, after=position, start_timestamp=listener.start_timestamp
    )
    while url:
        if result.pages >= MAX_PAGES_PER_POLL:
            result.more = True
            return
        page = client.get_page(url)
        result.pages += 1
        fresh: list[FetchedLog] = []
        for log in page.logs:
            here = position_of(log)
            if fresh and here <= position_of(fresh[-1]):
                raise MirrorNodeError(f"mirror node page out of order at {log.consensus_timestamp}#{log.log_index}")
            if position is None or here > position:
                fresh.append(log)  # anything at or before the cursor is already stored
        if fresh:
            last = position_of(fresh[-1])
            expected = _position(listener)
            new = (None, MirrorPosition.format_timestamp(last.nanos), last.index)
            if not _commit_page(listener, expected=expected, new=new, logs=fresh, result=result):
                return
            listener.last_processed_timestamp, listener.last_processed_log_index = new[1], new[2]
            position = last
        url = page.next_url


def _mirror_position(listener: EventListener) -> MirrorPosition | None:
    if listener.last_processed_timestamp is None or listener.last_processed_log_index is None:
        return None
    return MirrorPosition(
        MirrorPosition.parse_timestamp(listener.last_processed_timestamp), listener.last_processed_log_index
    )


# --- One page, one transaction ----------------------------------------------------------------------
def _commit_page(
    listener: EventListener, *, expected: Position, new: Position, logs: list[FetchedLog], result: PollResult
) -> bool:
    """Store `logs`, run their processors and move the cursor from `expected` to `new`, atomically.

    Returns False (and writes nothing) when the cursor is no longer at `expected` or the listener
    was disabled meanwhile: another poller got there first.
    """
    result.fetched += len(logs)
    fetch_commit_seam(listener.pk, logs)
    with transaction.atomic():
        # skip_locked: a poller that finds the row locked stands down instead of waiting for the
        # other one's commit (and hitting the lock timeout); the other one is doing the work.
        locked = EventListener.objects.select_for_update(skip_locked=True).filter(pk=listener.pk).first()
        if locked is None:
            result.skipped = "another poll is committing"
            return False
        if not locked.enabled:
            result.skipped = "disabled during the poll"
            return False
        if _position(locked) != expected:
            result.skipped = "another poll moved the cursor"
            logger.info("listener cursor moved by another poll listener_id=%s", listener.pk)
            return False
        known = set(
            ChainEvent.objects.filter(tx_hash__in={log.tx_hash for log in logs}).values_list("tx_hash", "log_index")
        )
        stored = 0
        for log in logs:
            key = (log.tx_hash, log.log_index)
            if key in known:
                result.duplicates += 1
                continue
            known.add(key)
            if _store_and_dispatch(locked, log, result):
                stored += 1
        locked.last_processed_block, locked.last_processed_timestamp, locked.last_processed_log_index = new
        locked.events_stored = F("events_stored") + stored
        locked.save(
            update_fields=[
                "last_processed_block", "last_processed_timestamp", "last_processed_log_index",
                "events_stored", "updated_at",
            ]
        )  # fmt: skip
    result.stored += stored
    return True


def _store_and_dispatch(listener: EventListener, log: FetchedLog, result: PollResult) -> bool:
    decoded: DecodedEvent | None
    try:
        decoded = decode_log(listener.abi_name, log, contract_address=listener.contract_address)
    except UndecodableLog as exc:
        decoded, error = None, str(exc)
    event = ChainEvent(
        listener=listener,
        tx_hash=log.tx_hash,
        log_index=log.log_index,
        contract_address=listener.contract_address,
        block_number=log.block_number,
        block_timestamp=log.block_timestamp,
        consensus_timestamp=log.consensus_timestamp,
        event_name=decoded.event_name if decoded else None,
        args=args_to_json(decoded.args) if decoded else {},
        raw_log=log.raw,
        status=ChainEvent.Status.NO_PROCESSOR if decoded else ChainEvent.Status.UNDECODABLE,
        error="" if decoded else error,
    )
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        result.duplicates += 1  # stored meanwhile through another listener of the same contract
        return False
    if decoded is None:
        result.undecodable += 1
        logger.warning(
            "undecodable log stored and skipped listener_id=%s tx_hash=%s log_index=%s error=%s",
            listener.pk, log.tx_hash, log.log_index, event.error,
        )  # fmt: skip
        return True
    run_processor(event, decoded, result)
    return True


def run_processor(event: ChainEvent, decoded: DecodedEvent, result: PollResult | None = None) -> None:
    """Run the event's processor in a savepoint and record the outcome on the event (caller's transaction)."""
    processor = get_event_processor(event.listener.abi_name, decoded.event_name)
    if processor is None:
        return
    try:
        with transaction.atomic():
            processor(decoded)
    except Exception as exc:
        event.mark_failed(f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS])
        if result is not None:
            result.failed += 1
        logger.exception(
            "chain event processor failed event_id=%s event=%s tx_hash=%s log_index=%s",
            event.pk, decoded.event_name, event.tx_hash, event.log_index,
        )  # fmt: skip
    else:
        event.mark_processed(now=timezone.now())
        if result is not None:
            result.processed += 1
