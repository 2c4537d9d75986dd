"""Run a command with real PostgreSQL and Redis: `python -m tests.services -- pytest ...`.

Starts a throwaway PostgreSQL cluster unless DATABASE_URL already points at PostgreSQL, and a
Redis unless REDIS_URL is set; exports both to the command; stops what it started, whatever
happens; exits with the command's code.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from types import FrameType

from config.localservices import LocalService, start_postgres, start_redis


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: python -m tests.services -- COMMAND [ARGS...]", file=sys.stderr)
        return 2

    started: list[LocalService] = []
    env = dict(os.environ)
    # Tests run with DEBUG off, like production; they need a key but it protects nothing.
    env.setdefault("SECRET_KEY", f"test-only-{secrets.token_hex(16)}")

    def stop_all(signum: int | None = None, frame: FrameType | None = None) -> None:
        while started:
            started.pop().stop()
        if signum is not None:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop_all)
    try:
        if not env.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
            postgres = start_postgres()
            started.append(postgres)
            env["DATABASE_URL"] = postgres.url
            print(f"services: postgres at {postgres.url.split('@')[-1]}", file=sys.stderr)
        if not env.get("REDIS_URL"):
            redis = start_redis()
            started.append(redis)
            env["REDIS_URL"] = redis.url
            print(f"services: redis at {redis.url}", file=sys.stderr)
        return subprocess.call(argv, env=env)  # noqa: S603 - the caller's own command
    except KeyboardInterrupt:
        return 130
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
