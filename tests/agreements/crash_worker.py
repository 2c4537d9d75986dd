"""A real Celery worker process that dies (`os._exit`) at a seam of the outbox's final alert.

Run by the crash tests as `python -m tests.agreements.crash_worker SEAM` (see `tests.fixtures.crashing`):
  after_failed    a row that gave up is committed FAILED, the process dies before its alert is sent
  while_alerting  the alert is claimed and on its way, the process dies before Discord gets it; the
                  hold a sender has on an alert lasts 1 s here instead of `ALERT_HOLD`, so that the
                  test need not wait a minute for it to expire
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any
from unittest import mock
from uuid import UUID

from tests.fixtures.crashing import die, serve, setup_django


def main(seam: str) -> None:
    setup_django()
    from agreements import outbox

    def die_before_alerting(self: outbox.Outbox[Any], row_id: UUID) -> bool:
        die()

    def die_while_alerting(**alert: Any) -> bool:
        die()

    if seam == "after_failed":
        outbox.Outbox.alert_failed = die_before_alerting  # type: ignore[method-assign]
    elif seam == "while_alerting":
        mock.patch.object(outbox, "send_alert", die_while_alerting).start()
        outbox.ALERT_HOLD = timedelta(seconds=1)
    else:
        raise SystemExit(f"unknown seam {seam}")
    serve("webhooks")


if __name__ == "__main__":
    main(sys.argv[1])
