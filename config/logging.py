"""Log formatting: JSON lines for production, and a filter that redacts secrets.

Code never logs secrets; the filter is the safety net for what slips through (an exception
message quoting a URL with credentials, a header dict).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_SECRET_WORDS = r"(?:private[_-]?key|secret|password|passwd|token|authorization|signature|api[_-]?key)"  # noqa: S105 - a pattern, not a password
# A public 0x address (40 hex digits) is not a secret, even under a key like `token=` (a token's
# contract address); anything else under a secret-sounding key is redacted.
_KEY_VALUE = re.compile(
    rf"(?i)(\b\w*{_SECRET_WORDS}\w*\b\s*[=:]\s*)(?!0x[0-9a-f]{{40}}(?![0-9a-z]))"
    rf"((?:bearer|token|basic)\s+[^\s,;&]+|\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)

REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """Remove what looks like a secret from a message."""
    text = _PEM.sub(REDACTED, text)
    text = _URL_CREDENTIALS.sub(rf"\1{REDACTED}\3", text)
    return _KEY_VALUE.sub(rf"\1{REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)
