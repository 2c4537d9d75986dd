"""Hedera Mirror Node client for contract logs: `GET /api/v1/contracts/{address}/results/logs`.

The stream is read oldest first (`order=asc`: the API's default is desc) in pages of at most 100
(`limit=100`: its default is 25), from a lower timestamp bound, following `links.next` until it is
null. Logs of one transaction share a consensus timestamp and are told apart by `index`, so a
position is (timestamp, index); the API's own next links resume with
`timestamp=gte:T&index=gt:K`, and so do we after a restart: no log is skipped when a transaction's
logs straddle a page boundary, and none is read twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from chain.listener.types import FetchedLog, MirrorPosition

logger = logging.getLogger(__name__)

PAGE_LIMIT = 100
LOGS_PATH = "/api/v1/contracts/{address}/results/logs"


class MirrorNodeError(Exception):
    """The Mirror Node could not be read or answered something unusable (the poll fails, cursor stays)."""


@dataclass(frozen=True)
class MirrorPage:
    logs: list[FetchedLog]
    next_url: str | None


class MirrorNodeClient:
    def __init__(self, base_url: str, *, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        if not base_url:
            raise MirrorNodeError("HEDERA_MIRROR_URL is not set")
        base = base_url.rstrip("/")
        if base.endswith("/api/v1"):
            base = base[: -len("/api/v1")]
        self.base_url = base
        self.timeout = timeout
        self.session = session or requests.Session()

    def first_page_url(self, address: str, *, after: MirrorPosition | None, start_timestamp: str) -> str:
        """The URL of the first page after `after` (exclusive), or from `start_timestamp` (inclusive)."""
        params: list[tuple[str, str]] = [("order", "asc"), ("limit", str(PAGE_LIMIT))]
        if after is None:
            start = MirrorPosition.format_timestamp(MirrorPosition.parse_timestamp(start_timestamp))
            params.append(("timestamp", f"gte:{start}"))
        else:
            params += [
                ("timestamp", f"gte:{MirrorPosition.format_timestamp(after.nanos)}"),
                ("index", f"gt:{after.index}"),
            ]
        return f"{self.base_url}{LOGS_PATH.format(address=address)}?{urlencode(params, safe=':')}"

    def get_page(self, url: str) -> MirrorPage:
        try:
            response = self.session.get(url, timeout=self.timeout, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise MirrorNodeError(f"mirror node unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise MirrorNodeError(f"mirror node answered {response.status_code}: {_error_messages(response)}")
        try:
            body = response.json()
            logs = [_parse_log(item) for item in body["logs"]]
            next_link = body.get("links", {}).get("next")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MirrorNodeError(f"mirror node answered an unreadable page: {exc}") from exc
        next_url = urljoin(self._origin(), next_link) if next_link else None
        return MirrorPage(logs=logs, next_url=next_url)

    def _origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}/"


def _error_messages(response: requests.Response) -> str:
    try:
        messages = response.json()["_status"]["messages"]
        return "; ".join(str(m.get("message")) for m in messages)[:500]
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.text[:200]


def _parse_log(item: dict[str, Any]) -> FetchedLog:
    """The fields the stream position depends on must be sound; topics and data are kept as they are."""
    timestamp = str(item["timestamp"])
    nanos = MirrorPosition.parse_timestamp(timestamp)
    index = item["index"]
    tx_hash = item["transaction_hash"]
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ValueError(f"bad log index {index!r}")
    if not isinstance(tx_hash, str) or not tx_hash.startswith("0x"):
        raise ValueError(f"bad transaction hash {tx_hash!r}")
    topics = item.get("topics") or []
    data = item.get("data") or "0x"
    return FetchedLog(
        address=str(item.get("address") or ""),
        topics=tuple(str(topic) for topic in topics),
        data=str(data),
        tx_hash=tx_hash.lower(),
        log_index=index,
        block_number=int(item.get("block_number") or 0),
        block_timestamp=dt.datetime.fromtimestamp(nanos // 1_000_000_000, tz=dt.UTC).replace(
            microsecond=(nanos % 1_000_000_000) // 1000
        ),
        consensus_timestamp=MirrorPosition.format_timestamp(nanos),
        raw=item,
    )


def position_of(log: FetchedLog) -> MirrorPosition:
    return MirrorPosition(MirrorPosition.parse_timestamp(log.consensus_timestamp), log.log_index)
