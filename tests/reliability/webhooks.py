"""Outbound webhooks in the reliability scenarios: made through the API as services make them, and
counted from the stack's database and from what its receiver saw."""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tests.agreements.factories import agreement_body
from tests.agreements.servers import ReceivedRequest, Receiver, Reply
from tests.reliability.stack import Stack


def announce_agreements(stack: Stack, count: int, *, threads: int = 4) -> list[str]:
    """`count` agreements created through the API and moved DRAFT -> BEFORE_PROGRESS, which writes
    one outbound delivery each (a `moneyGuard.createIOU`). Returns the agreement ids."""

    def one(_: int) -> str:
        created = stack.api("POST", "/api/v1/agreements/", agreement_body())
        assert created.status_code == 201, created.text
        agreement_id = str(created.json()["id"])
        moved = stack.api("POST", f"/api/v1/agreements/{agreement_id}/transition/", {"status": "BEFORE_PROGRESS"})
        assert moved.status_code == 200, moved.text
        return agreement_id

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def delivery_statuses(stack: Stack) -> dict[str, int]:
    """How many deliveries are in each status, from the stack's database."""
    rows = stack.sql("SELECT status, count(*) FROM agreement_webhook_deliveries GROUP BY status")
    return {str(status): int(count) for status, count in rows}


def answer_from_now_on(receiver: Receiver, reply: Reply) -> int:
    """Make `reply` the receiver's answer to every request from now on; the index (in
    `receiver.requests`) of the first request that gets it."""
    with receiver.lock:
        receiver.script.clear()
        receiver.default = reply
        return len(receiver.requests)


@dataclass(frozen=True)
class Delivered:
    deliveries: int
    distinct_ids: int  # distinct webhook-ids the receiver accepted (answered 2xx)
    repeats: int  # accepted requests beyond the first for the same webhook-id (the receiver dedupes them)


def check_delivered(stack: Stack, requests: list[ReceivedRequest]) -> Delivered:
    """Every delivery in the database is SUCCESS with exactly one successful attempt; `requests` (the
    ones the receiver accepted) carry every delivery's webhook-id, all verified, and no event was
    delivered under two different webhook-ids."""
    ids = {str(delivery_id) for (delivery_id,) in stack.sql("SELECT id FROM agreement_webhook_deliveries")}
    assert delivery_statuses(stack) == {"SUCCESS": len(ids)}, delivery_statuses(stack)
    twice = stack.sql(
        "SELECT delivery_id FROM agreement_webhook_delivery_attempts WHERE succeeded"
        " GROUP BY delivery_id HAVING count(*) > 1"
    )
    assert twice == [], f"{len(twice)} deliveries recorded as succeeded twice"
    assert all(request.verified for request in requests)
    per_id = Counter(request.headers["webhook-id"] for request in requests)
    assert set(per_id) == ids, f"accepted {len(set(per_id) & ids)} of {len(ids)} ids, {len(set(per_id) - ids)} unknown"
    ids_per_event: dict[tuple[str, str], set[str]] = defaultdict(set)
    for request in requests:
        body = request.json
        ids_per_event[(body["data"]["agreement_id"], body["type"])].add(request.headers["webhook-id"])
    doubled = [event for event, event_ids in ids_per_event.items() if len(event_ids) > 1]
    assert doubled == [], f"{len(doubled)} events delivered as two different deliveries"
    return Delivered(len(ids), len(per_id), sum(per_id.values()) - len(per_id))
