"""JSON request bodies are refused, before they are parsed, when nested deeper than any request of
ours: Python's JSON parser recurses once per level, and a 200 KB body of `[` crashed the web worker
(SIGSEGV) instead of answering. Used by the API's parser and by the inbound webhook."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 32  # our deepest body (an inbound event) is 3 levels deep
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
TOO_DEEP = f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `body` opens more than `limit` arrays/objects inside each other (strings skipped)."""
    brackets = _STRING.sub(b'""', body).translate(None, _NOT_A_BRACKET)
    if len(brackets) <= 2 * limit:
        return False
    return max(accumulate(1 if byte in b"[{" else -1 for byte in brackets)) > limit


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser behind the depth check."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        body = stream.read() if stream is not None else b""
        if too_deep(body):
            raise ParseError(TOO_DEEP)
        return super().parse(io.BytesIO(body), media_type, parser_context)
