"""Run every benchmark module (`bench/bench_*.py`): `python -m bench [NAME ...]`.

Each module has `run() -> None` that measures a baseline and the code under test in the same run
and prints their ratio. Timings are never asserted: benchmarks inform, tests decide.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path


def main(names: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    selected = [m for m in modules if not names or m.removeprefix("bench_") in names or m in names]
    if not selected:
        print("no benchmarks selected", file=sys.stderr)
        return 1
    for name in selected:
        print(f"== {name}")
        importlib.import_module(f"bench.{name}").run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
