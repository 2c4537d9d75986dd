"""Scenario 5: beat overlap. (a) Due scheduled distributions, and the scheduled-payouts task run 20
times at the same instant by 20 processes; (b) a second beat process, started by mistake with the
Procfile's own command, running beside the first for 2 minutes while more distributions come due;
then the first one (the leader) is stopped and the second takes over, and one more comes due.
Each due distribution is started once: one start, one plan, every batch sent once (attempts == 1),
every holder paid once on chain. Each beat's log says how often it sent each schedule: the
scheduled-payouts cron is sent at most once per tick by the two beats together, before, during and
after the hand-over."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery.schedules import crontab

from chain.localchain import ANVIL_DEV_KEYS
from chain.signers import LocalKeySigner
from tests.payouts.chainkit import DemoAsset
from tests.reliability.checks import PaidOnce, check_nonces, check_paid_once
from tests.reliability.stack import BASE_DIR, Stack, running_stack, summary, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1500)]

HOLDERS = 30
FIRED_AT_ONCE = 20
ASSETS_FIRED = 6  # due before the 20 runs fire
ASSETS_OVERLAP = 4  # coming due while two beats run
ASSETS_AFTER = 1  # coming due after the first beat stopped and the second took over
OVERLAP_SECONDS = 120
RUN_LIMIT_SECONDS = 300
SCHEDULE = "payouts-run-scheduled"
SENT = re.compile(r"Sending due task (\S+) \(")
INTERVAL_SLACK = dt.timedelta(seconds=1)
LOG_TIME = re.compile(r'"time": "([^"]+)"')

# One run of the scheduled-payouts task, as a worker runs it, once every process is ready and told "go".
FIRE = """
import json, sys
from payouts.tasks import run_scheduled_distributions_task
print("ready", flush=True)
sys.stdin.readline()
print("result=" + json.dumps(run_scheduled_distributions_task()), flush=True)
"""


def schedule_payout(stack: Stack, asset_id: str, *, at: dt.datetime) -> str:
    """A ONE_OFF fixed payout due at `at`, through the API; its id."""
    body = {"subtype": "ONE_OFF", "amount_type": "FIXED", "amount": "300", "concept": "beat"}
    body["scheduled_at"] = at.isoformat()
    response = stack.api("POST", f"/api/v1/assets/{asset_id}/distributions", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def fire_at_once(stack: Stack, times: int) -> list[str]:
    """Run the scheduled-payouts task in `times` processes released at the same instant; their results."""
    processes = [
        subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "shell", "-c", FIRE],
            cwd=BASE_DIR,
            env=stack.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(times)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            for line in process.stdout:  # ends at "ready", or when the process exits
                if line.strip() == "ready":
                    break
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=RUN_LIMIT_SECONDS)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    return outputs


def results_of(outputs: list[str]) -> list[object]:
    lines = [line for output in outputs for line in output.splitlines()]
    return [json.loads(line.removeprefix("result=")) for line in lines if line.startswith("result=")]


def wait_finished(stack: Stack, distribution_ids: list[str]) -> None:
    deadline = time.monotonic() + RUN_LIMIT_SECONDS
    while any(stack.distribution_status(d) not in ("COMPLETED", "FAILED") for d in distribution_ids):
        assert time.monotonic() < deadline, f"not all finished within {RUN_LIMIT_SECONDS}s"
        time.sleep(1)


def check_started_once(stack: Stack, demo: DemoAsset, distribution_id: str, logs: str) -> PaidOnce:
    """Started once (one start logged), planned once (one payment row per holder), each batch sent
    once (attempts == 1, one lane transaction each), every holder paid once on chain."""
    pk = uuid.UUID(distribution_id)
    starts = logs.count(f"distribution started distribution_id={distribution_id}")
    assert starts == 1, f"{distribution_id} started {starts} times"
    holders_count, payments = stack.sql(
        "SELECT d.holders_count, (SELECT count(*) FROM payouts_holderpayment p WHERE p.distribution_id = d.id)"
        " FROM payouts_distribution d WHERE d.id = %s",
        pk,
    )[0]
    assert holders_count == payments == len(demo.holders), (holders_count, payments, len(demo.holders))
    attempts = Counter(
        int(a) for (a,) in stack.sql("SELECT attempts FROM payouts_batchpayout WHERE distribution_id = %s", pk)
    )
    assert set(attempts) == {1}, f"batch attempts of {distribution_id}: {dict(attempts)}"
    transactions = stack.sql(
        "SELECT count(*) FROM chain_chaintransaction t JOIN payouts_batchpayout b ON t.intent_key LIKE"
        " 'payout-batch:' || b.id || ':%%' WHERE b.distribution_id = %s",
        pk,
    )[0][0]
    assert transactions == attempts[1], f"{transactions} lane transactions for {attempts[1]} batches"
    return check_paid_once(stack, demo, distribution_id)


def sends(log: str) -> Counter[str]:
    """How many times a beat's log says it sent each schedule."""
    return Counter(SENT.findall(log))


def sent_at(log: str, schedule: str | None = None) -> list[dt.datetime]:
    """When a beat's log says it sent `schedule` (any schedule if None; JSON log lines)."""
    return [
        dt.datetime.fromisoformat(stamp)
        for line in log.splitlines()
        for name in SENT.findall(line)
        if schedule in (None, name)
        for stamp in LOG_TIME.findall(line)[:1]
    ]


def logged_at(log: str, text: str) -> dt.datetime | None:
    """When a log line containing `text` was first written (JSON log lines)."""
    for line in log.splitlines():
        if text in line:
            stamps = LOG_TIME.findall(line)
            return dt.datetime.fromisoformat(stamps[0]) if stamps else None
    return None


@dataclass(frozen=True)
class Cron:
    """The minutes a cron schedule ticks at (UTC), as celery expands its fields."""

    minute: frozenset[int]
    hour: frozenset[int]
    day_of_week: frozenset[int]  # 0 is Sunday
    day_of_month: frozenset[int]
    month_of_year: frozenset[int]

    @classmethod
    def parse(cls, *fields: str) -> Cron:
        expanded = crontab(*fields)  # minute, hour, day_of_week, day_of_month, month_of_year
        return cls(*(frozenset(getattr(expanded, name)) for name in cls.__dataclass_fields__))

    def ticks(self, minute: dt.datetime) -> bool:
        return (
            minute.minute in self.minute
            and minute.hour in self.hour
            and minute.isoweekday() % 7 in self.day_of_week
            and minute.day in self.day_of_month
            and minute.month in self.month_of_year
        )

    def tick_between(self, after: dt.datetime, until: dt.datetime) -> bool:
        """Whether a tick (a matching minute) falls in (after, until]."""
        minute = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        while minute <= until:
            if self.ticks(minute):
                return True
            minute += dt.timedelta(minutes=1)
        return False


def schedules(stack: Stack) -> dict[str, dt.timedelta | Cron]:
    """Every enabled periodic task in the beat tables: its interval, or its cron."""
    rows = stack.sql(
        """
        SELECT t.name, i.every, i.period, c.minute, c.hour, c.day_of_week, c.day_of_month, c.month_of_year
        FROM django_celery_beat_periodictask t
        LEFT JOIN django_celery_beat_intervalschedule i ON i.id = t.interval_id
        LEFT JOIN django_celery_beat_crontabschedule c ON c.id = t.crontab_id
        WHERE t.enabled
        """
    )
    found: dict[str, dt.timedelta | Cron] = {}
    for name, every, period, *cron in rows:
        if every is not None:
            found[str(name)] = dt.timedelta(**{str(period): int(every)})
        elif cron[0] is not None:
            found[str(name)] = Cron.parse(*cron)
    return found


def sent_early(every: dt.timedelta | Cron, sent: list[dt.datetime]) -> list[str]:
    """Sends (by both beats together) that came before their schedule was due again after the
    previous send: within its interval, or before the cron's next tick. Each is a send twice."""
    early = []
    for before, after in itertools.pairwise(sorted(sent)):
        if isinstance(every, Cron):
            again = every.tick_between(before, after)
        else:
            again = after - before >= every - INTERVAL_SLACK
        if not again:
            early.append(f"{before:%H:%M:%S}+{after:%H:%M:%S}")
    return early


def due_times(start: float, count: int, *, within: float) -> list[float]:
    """`count` instants spread between 15 s after `start` and 5 s before the last minute boundary
    (a cron `* * * * *` tick) inside `within` seconds of it, so each is started while both beats run."""
    last_tick = (start + within - 5) // 60 * 60
    first, last = start + 15, last_tick - 5
    assert last > first, (start, last_tick)
    return [first + i * (last - first) / (count - 1) for i in range(count)]


def test_due_distributions_start_once_under_20_simultaneous_runs_and_two_beats(tmp_path: Path) -> None:
    settings = {"SCHEDULED_PAYOUTS_CRON": "* * * * *", "PAYOUT_BATCH_SIZE": "20"}
    # beat is started later, in (b): in (a) only the 20 runs start anything
    with running_stack(tmp_path, block_time=1, settings=settings, processes=("web", "worker", "chain")) as stack:
        count = ASSETS_FIRED + ASSETS_OVERLAP + ASSETS_AFTER
        demos = [stack.deploy_asset(HOLDERS, salt=f"beat{i}") for i in range(count)]
        asset_ids = [stack.import_asset(demo) for demo in demos]
        sender = LocalKeySigner(ANVIL_DEV_KEYS[0]).address
        nonce_before = stack.chain.nonce(sender, "latest")

        # (a) given: ASSETS_FIRED distributions due; when: the task runs 20 times at the same instant
        due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
        fired = [schedule_payout(stack, asset_id, at=due) for asset_id in asset_ids[:ASSETS_FIRED]]
        time.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds()) + 1)
        outputs = fire_at_once(stack, FIRED_AT_ONCE)
        results = results_of(outputs)
        assert len(results) == FIRED_AT_ONCE, outputs[0][-2000:]
        ran = [r for r in results if isinstance(r, dict)]
        assert sum(r["done"] for r in ran) == ASSETS_FIRED, results
        wait_finished(stack, fired)

        # (b) given: one beat, then a second one with the same command; distributions come due
        stack.add_process("beat")
        stack.add_process("beat-2", "beat")
        overlap_start = time.time()
        at = due_times(overlap_start, ASSETS_OVERLAP, within=OVERLAP_SECONDS)
        overlapped = [
            schedule_payout(stack, asset_id, at=dt.datetime.fromtimestamp(when, dt.UTC))
            for asset_id, when in zip(asset_ids[ASSETS_FIRED : ASSETS_FIRED + ASSETS_OVERLAP], at, strict=True)
        ]
        while time.time() < overlap_start + OVERLAP_SECONDS:
            assert all(p.running() for p in stack.processes.values()), "a process exited during the overlap"
            time.sleep(1)
        # when: the mistake is noticed and one of the two is stopped: the leader (the harder case),
        # 20-40 s after a tick it sent, so that a new leader sending that tick again would show
        wait_until(lambda: 20 <= time.time() % 60 < 40, timeout=60, what="20 s past a tick", every=0.5)
        handed_over_at = dt.datetime.now(dt.UTC)
        stack.processes["beat"].stop()
        due_after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
        overlapped += [schedule_payout(stack, asset_id, at=due_after) for asset_id in asset_ids[-ASSETS_AFTER:]]
        wait_finished(stack, overlapped)

        # then: every due distribution started, planned, sent and paid once
        logs = stack.logs() + "\n".join(outputs)
        paid = [
            check_started_once(stack, demo, distribution_id, logs)
            for demo, distribution_id in zip(demos, fired + overlapped, strict=True)
        ]
        started_during_overlap = stack.sql(
            "SELECT count(*) FROM payouts_distribution WHERE id = ANY(%s) AND started_at <= %s",
            [uuid.UUID(d) for d in overlapped[:ASSETS_OVERLAP]],
            handed_over_at,
        )[0][0]
        assert started_during_overlap == ASSETS_OVERLAP, f"{started_during_overlap} started while both beats ran"
        nonces = check_nonces(stack, sender, nonce_before)
        first_log, second_log = stack.processes["beat"].log(), stack.processes["beat-2"].log()
        first, second = sends(first_log), sends(second_log)
        assert first[SCHEDULE] >= 2, f"the first beat sent {SCHEDULE} {first[SCHEDULE]} times in 2 minutes"
        second_leads_at = logged_at(second_log, "beat is leader")
        assert second_leads_at is not None, "the second beat never took over"
        assert second_leads_at > handed_over_at, f"the second beat led at {second_leads_at}, before the hand-over"
        standby_sent = [sent for sent in sent_at(second_log) if sent < handed_over_at]
        assert not standby_sent, f"the second beat sent {len(standby_sent)} tasks while the first one led"
        twice = {
            name: early
            for name, every in schedules(stack).items()
            if (early := sent_early(every, sent_at(first_log, name) + sent_at(second_log, name)))
        }
        assert not twice, f"sent again before due (first+second send): {twice}; sent: {dict(first)} / {dict(second)}"
        assert "could not release leadership" not in first_log, "the leader's warm stop logged a failed release"
        summary(
            "beat_overlap",
            fired_at_once=FIRED_AT_ONCE,
            runs_that_started=sum(1 for r in ran if r["done"]),
            runs_skipped_lock=results.count("skipped: already running"),
            runs_found_nothing=sum(1 for r in ran if not r["done"]),
            due_fired=ASSETS_FIRED,
            due_overlap=ASSETS_OVERLAP,
            due_after_takeover=ASSETS_AFTER,
            started_once=len(paid),
            holders_paid_once=sum(p.paid_once for p in paid),
            batch_attempts=1,
            nonces=nonces,
            beat1_sent=",".join(f"{name}:{count}" for name, count in sorted(first.items())),
            beat2_sent=",".join(f"{name}:{count}" for name, count in sorted(second.items())),
            beat2_sent_before_takeover=0,
            takeover_s=f"{(second_leads_at - handed_over_at).total_seconds():.1f}",
            sent_twice=0,
        )
