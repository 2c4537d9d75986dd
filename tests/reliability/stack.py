"""A whole deployment on this machine, for the reliability suite, built from real parts only.

PostgreSQL and Redis of its own (so a test may stop and restart them), anvil behind an RPC proxy (so
a test may cut the chain off), the local Discord and webhook receiver, and the Procfile's processes
started as the Procfile starts them (`release`, then `web` on gunicorn, `worker`, `chain`, `beat`).
Each process runs in a process group of its own: `kill()` is `kill -9` of the whole group (a
container that dies), `start()` brings it back. Every process logs to a file under the stack's
directory; `logs()` reads them all (the suite scans them for secrets).

The test process talks to the stack as its users do: over HTTP with an API token, and reads the
truth from the stack's database (plain SQL) and from the chain.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from agreements.signing import generate_key_pair
from chain.client import ChainClient
from chain.localchain import ANVIL_DEV_KEYS, DeployedContracts, deploy_reference_contracts, start_anvil
from chain.signers import LocalKeySigner
from config.localservices import LocalService, free_port, restart_postgres, start_postgres, start_redis
from tests.agreements.servers import DiscordServer, Receiver
from tests.fixtures.rpc_proxy import RpcProxy
from tests.payouts.chainkit import DemoAsset, deploy_asset

BASE_DIR = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
READY_MARKERS = {"worker": " ready.", "chain": " ready.", "beat": "beat: Starting"}


def procfile(path: Path = BASE_DIR / "Procfile") -> dict[str, str]:
    """The Procfile's process types and their commands."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.25) -> Any:
    """Poll `predicate` until it returns something truthy (returned), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)


@dataclass
class Process:
    """One Procfile process, run as `bash -c "exec <command>"` in a process group of its own."""

    name: str
    command: str
    env: dict[str, str]
    log_path: Path
    kind: str = ""  # the Procfile process type it runs (its name unless a second one of a kind)
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.kind = self.kind or self.name

    def start(self) -> None:
        assert not self.running(), f"{self.name} is running already"
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - the Procfile's own command
                ["bash", "-c", f"exec {self.command}"],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """`kill -9` the whole process group: the main process and its pool children at once."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM to the group), then `kill -9` if it does not end in time."""
        if not self.running():
            return
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Stack:
    root: Path
    block_time: float | None = None
    settings: dict[str, str] = field(default_factory=dict)
    holders: int = 0  # an asset with this many holders is deployed on the chain when > 0
    services: dict[str, LocalService] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    token: str = ""
    password: str = ""
    web_url: str = ""
    secrets: list[str] = field(default_factory=list)  # values no log line may hold

    # --- life cycle -------------------------------------------------------------------------------
    def start(self, processes: tuple[str, ...] = ("web", "worker", "chain", "beat")) -> Stack:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.services["postgres"] = start_postgres()
        self.services["redis"] = start_redis(data_dir=self.root / "redis")
        self.services["anvil"] = start_anvil(block_time=self.block_time)
        self.contracts: DeployedContracts = deploy_reference_contracts(self.services["anvil"].url, holders=1)
        self.chain = ChainClient(self.services["anvil"].url)
        self.proxy = RpcProxy(self.services["anvil"].url).start()
        self.discord = DiscordServer().start()
        self.application_id = str(uuid.uuid4())
        self.private_pem, self.public_pem = generate_key_pair(2048)  # ours: signs outbound only
        # the blockchain service's own pair: signs what it sends us (the tests sign inbound with it)
        self.service_private_pem, self.service_public_pem = generate_key_pair(2048)
        self.receiver = Receiver(public_pem=self.public_pem, application_id=self.application_id).start()
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.webhook_password = secrets.token_urlsafe(12)
        self.discord_token = secrets.token_urlsafe(24)
        receiver_port = self.receiver.url.rsplit(":", 1)[1].rstrip("/")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))},
            "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(BASE_DIR),  # this checkout's code, whatever the virtualenv has installed
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
            "SECRET_KEY": "reliability-" + secrets.token_hex(24),
            "SECURE_COOKIES": "0",  # plain HTTP on loopback
            "DATABASE_URL": self.services["postgres"].url,
            "REDIS_URL": self.services["redis"].url,
            "CHAIN_RPC_URL": self.proxy.url,
            "CHAIN_SIGNER": "local",
            "CHAIN_SIGNER_PRIVATE_KEY": ANVIL_DEV_KEYS[0],
            "CHAIN_CONFIRMATIONS": "0" if self.block_time is None else "1",
            "BLOCKCHAIN_APPLICATION_ID": self.application_id,
            "BLOCKCHAIN_APPLICATION_SECRET_KEY": self.private_pem.replace("\n", "\\n"),
            "BLOCKCHAIN_SERVICE_PUBLIC_KEY": self.service_public_pem,
            # credentials in the URL, as some receivers want them: they must never reach a log line
            "BLOCKCHAIN_WEBHOOK_URL": f"http://hook:{self.webhook_password}@127.0.0.1:{receiver_port}/webhook/money-guard",
            "DISCORD_WEBHOOK_URL": f"{self.discord.url}api/webhooks/1/{self.discord_token}",
            "LOG_FORMAT": "json",
            "PORT": str(self.web_port),
            "WEB_CONCURRENCY": "2",
            "WORKER_CONCURRENCY": "2",
            "PAYOUT_STUCK_AFTER_SECONDS": "10",
            "PAYOUT_SYNC_STUCK_AFTER_SECONDS": "30",
            "PAYOUT_SWEEP_EVERY_SECONDS": "5",
            "WEBHOOK_RETRY_BASE_SECONDS": "1",
            "WEBHOOK_RETRY_MAX_SECONDS": "5",
            "WEBHOOK_SWEEP_AFTER_SECONDS": "15",
            "WEBHOOK_SWEEP_EVERY_SECONDS": "5",
            **self.settings,
        }
        commands = procfile()
        self.release(commands["release"])
        self.password = secrets.token_urlsafe(16)
        created = self.manage("create_operator", "ops", "--superuser", "--password", self.password)
        self.token = next(line.split(": ", 1)[1] for line in created.splitlines() if line.startswith("api token"))
        self.secrets += [
            self.env["SECRET_KEY"],
            ANVIL_DEV_KEYS[0].removeprefix("0x"),
            *pem_body_lines(self.private_pem),
            self.token,
            self.password,
            self.webhook_password,
            self.discord_token,
        ]
        for name in processes:
            self.processes[name] = Process(name, commands[name], self.env, self.root / "logs" / f"{name}.log")
            self.start_process(name)
        if self.holders:
            self.asset = self.deploy_asset(self.holders)
        return self

    def release(self, command: str) -> None:
        result = subprocess.run(  # noqa: S603 - the Procfile's own command
            ["bash", "-c", command], cwd=BASE_DIR, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"release failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"

    def close(self) -> None:
        """Stop everything this stack started, whatever state it is in; then scan its logs."""
        for process in self.processes.values():
            with contextlib.suppress(Exception):
                process.stop(timeout=10)
        for server in (getattr(self, "proxy", None), getattr(self, "receiver", None), getattr(self, "discord", None)):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
        for name in ("anvil", "redis", "postgres"):
            service = self.services.pop(name, None)
            if service is not None:
                with contextlib.suppress(Exception):
                    service.stop()
        if self.secrets:
            SCANNED.append(LogScan(str(self.root), len(self.logs()), len(self.secrets), self.secret_leaks()))

    def secret_leaks(self) -> list[str]:
        """Where a secret of this stack shows in a process log: the log line's start, secret masked."""
        receiver = getattr(self, "receiver", None)
        sent = [r.headers.get("webhook-signature", "") for r in receiver.requests] if receiver else []
        values = {value for value in [*self.secrets, *(s.split(",", 1)[-1] for s in sent if s)] if len(value) >= 8}
        leaks = []
        for path in sorted((self.root / "logs").glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                for value in values:
                    if value in line:
                        leaks.append(f"{path.name}: {line.replace(value, '<SECRET>')[:200]}")
        return leaks

    # --- processes --------------------------------------------------------------------------------
    def add_process(self, name: str, kind: str = "") -> Process:
        """Start one more process running the Procfile's `kind` command (default: `name`'s), as a
        deployment that starts a second one by mistake does; it logs to `<name>.log`."""
        assert name not in self.processes, f"{name} exists already"
        kind = kind or name
        process = Process(name, procfile()[kind], self.env, self.root / "logs" / f"{name}.log", kind=kind)
        self.processes[name] = process
        self.start_process(name)
        return process

    def start_process(self, name: str, *, timeout: float = 90) -> None:
        process = self.processes[name]
        offset = len(process.log())
        process.start()
        if process.kind == "web":
            wait_until(lambda: self._answers("/healthz"), timeout=timeout, what="web to answer /healthz")
        else:
            marker = READY_MARKERS[process.kind]
            wait_until(
                lambda: marker in process.log()[offset:] or not process.running(),
                timeout=timeout,
                what=f"{name} to be ready",
            )
            assert process.running(), f"{name} exited while starting:\n{process.log()[offset:][-3000:]}"

    def kill(self, name: str) -> None:
        self.processes[name].kill()

    def restart(self, name: str) -> None:
        self.processes[name].kill()
        self.start_process(name)

    def _answers(self, path: str) -> bool:
        try:
            return requests.get(self.web_url + path, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # --- services ---------------------------------------------------------------------------------
    def stop_postgres(self) -> None:
        self.services["postgres"].stop(keep_data=True)

    def start_postgres(self) -> None:
        self.services["postgres"] = restart_postgres(self.services["postgres"])

    def restart_redis_empty(self, down_seconds: float = 0) -> None:
        """Redis killed and started again on the same port without its data (as a broker that restarts
        empty): every queued message is gone."""
        redis = self.services.pop("redis")
        port = int(redis.url.rsplit(":", 1)[1].split("/", 1)[0])
        redis.process.kill()
        redis.process.wait(timeout=10)
        time.sleep(down_seconds)
        self.services["redis"] = start_redis(port=port, data_dir=self.root / "redis")

    def stop_receiver(self) -> None:
        """The blockchain service's webhook receiver goes away: connections to its port are refused."""
        self.receiver.stop()

    def start_receiver(self) -> Receiver:
        """A fresh receiver where the last one was (the port of BLOCKCHAIN_WEBHOOK_URL, which is kept)."""
        port = int(self.receiver.url.rsplit(":", 1)[1].rstrip("/"))
        self.receiver = Receiver(public_pem=self.public_pem, application_id=self.application_id, port=port).start()
        return self.receiver

    # --- talking to it ----------------------------------------------------------------------------
    def manage(self, *args: str) -> str:
        result = subprocess.run(  # noqa: S603 - our own manage.py
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args[:2])} failed:\n{result.stderr[-4000:]}"
        return result.stdout

    def api(self, method: str, path: str, body: Any = None, *, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Token {token or self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.web_url + path, json=body, headers=headers, timeout=30, **kwargs)

    def admin_session(self) -> requests.Session:
        """A browser session logged in to the admin as the stack's operator (CSRF cookie and all)."""
        session = requests.Session()
        login = self.web_url + "/admin/login/"
        session.get(login, timeout=30)
        response = session.post(
            login,
            data={
                "username": "ops",
                "password": self.password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "next": "/admin/",
            },
            timeout=30,
        )
        assert "sessionid" in session.cookies, f"admin login failed: {response.status_code}"
        return session

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.services["postgres"].url, connect_timeout=5) as conn:
            return list(conn.execute(query, params).fetchall())

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted((self.root / "logs").glob("*.log")))

    # --- payouts ----------------------------------------------------------------------------------
    def deploy_asset(self, holders: int, *, salt: str = "rel") -> DemoAsset:
        return deploy_asset(
            self.chain,
            LocalKeySigner(ANVIL_DEV_KEYS[0]),
            payment_token=self.contracts.payment_token,
            balances=[1 + (i * 7) % 13 for i in range(holders)],
            funding=10**15,
            salt=salt,
        )

    def import_asset(self, demo: DemoAsset, *, timeout: float = 300) -> str:
        """Import the asset through the API and wait for the workers to sync its holders."""
        response = self.api(
            "POST", "/api/v1/assets/import", {"token_address": demo.token, "payout_contract_address": demo.payout}
        )
        assert response.status_code == 201, response.text
        asset_id = str(response.json()["id"])
        wait_until(
            lambda: self.api("GET", f"/api/v1/assets/{asset_id}").json()["sync_status"] != "SYNCING",
            timeout=timeout,
            what="asset sync",
            every=1,
        )
        asset = self.api("GET", f"/api/v1/assets/{asset_id}").json()
        assert asset["sync_status"] == "SYNCED", asset
        return asset_id

    def pay_now(self, asset_id: str, amount: str) -> str:
        """An IMMEDIATE fixed payout through the API; its id."""
        body = {"subtype": "IMMEDIATE", "amount_type": "FIXED", "amount": amount, "concept": "reliability"}
        response = self.api("POST", f"/api/v1/assets/{asset_id}/distributions", body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def distribution_status(self, distribution_id: str) -> str:
        rows = self.sql("SELECT status FROM payouts_distribution WHERE id = %s", uuid.UUID(distribution_id))
        return str(rows[0][0])


def pem_body_lines(pem: str) -> list[str]:
    """The base64 lines of a PEM key: any one of them in a log line gives part of the key away."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


@dataclass(frozen=True)
class LogScan:
    root: str
    log_bytes: int
    secrets: int
    leaks: list[str]


SCANNED: list[LogScan] = []  # every stack closed in this test session, with what its logs gave away


@contextlib.contextmanager
def running_stack(root: Path, **kwargs: Any) -> Iterator[Stack]:
    processes = kwargs.pop("processes", ("web", "worker", "chain", "beat"))
    stack = Stack(root, **kwargs)
    try:
        yield stack.start(processes)
    finally:
        stack.close()


SUMMARY_FILE = Path(os.environ.get("RELIABILITY_SUMMARY_FILE", BASE_DIR / ".run" / "reliability-summary.txt"))


def summary(name: str, **figures: object) -> str:
    """Print (and append to RELIABILITY_SUMMARY_FILE) the one summary line of a scenario."""
    line = f"reliability {name}: ok " + " ".join(f"{key}={value}" for key, value in figures.items())
    print(line, flush=True)
    SUMMARY_FILE.parent.mkdir(parents=True, exist_ok=True)
    with SUMMARY_FILE.open("a") as out:
        out.write(line + "\n")
    return line
