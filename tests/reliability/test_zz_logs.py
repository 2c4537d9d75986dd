"""The log capture of the whole suite: every stack the session closed had its process logs scanned
for its secrets (private keys, API tokens, passwords, signatures sent and received, webhook URL
credentials, Discord's webhook token). Named to run last."""

from __future__ import annotations

import pytest

from tests.reliability.stack import SCANNED, summary

pytestmark = pytest.mark.reliability


def test_no_log_line_of_the_suite_holds_a_secret() -> None:
    if not SCANNED:
        pytest.skip("no stack ran in this session (run the whole reliability suite)")
    leaks = [f"{scan.root}: {leak}" for scan in SCANNED for leak in scan.leaks]
    assert not leaks, "\n".join(leaks[:20])
    summary(
        "log_capture",
        stacks=len(SCANNED),
        log_bytes=sum(scan.log_bytes for scan in SCANNED),
        secrets_checked=sum(scan.secrets for scan in SCANNED),
        leaks=len(leaks),
    )
