"""gunicorn settings, read with `gunicorn -c python:config.gunicorn`: the hook multiprocess metrics need."""

from __future__ import annotations

from typing import Any

from config.instruments import process_exited


def child_exit(server: Any, worker: Any) -> None:
    process_exited(worker.pid)
