"""The documentation and deployment files stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

BASE_DIR = Path(__file__).resolve().parents[2]


def _settings_variables() -> set[str]:
    source = (BASE_DIR / "config" / "settings.py").read_text()
    return set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_every_environment_variable_is_in_the_readme_table_and_env_example() -> None:
    # given
    readme = (BASE_DIR / "README.md").read_text()
    example = (BASE_DIR / ".env.example").read_text()
    variables = _settings_variables()
    # then
    assert len(variables) > 30
    assert sorted(v for v in variables if f"| `{v}` |" not in readme) == []
    assert sorted(v for v in variables if not re.search(rf"^{v}=", example, re.MULTILINE)) == []


def test_readme_starts_with_the_two_commands() -> None:
    readme = (BASE_DIR / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[1] for line in first_block.strip().splitlines()] == ["run", "test"]


def test_every_test_the_guarantees_name_exists() -> None:
    # given the README's Guarantees section, whose `path::name` and `::name` cells say what shows each promise
    readme = (BASE_DIR / "README.md").read_text()
    section = readme.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    named: list[tuple[str, str]] = []
    for row in section.splitlines():
        path = ""
        for full, short in re.findall(r"`(?:(tests/[\w/]+\.py)::|::)(\w+)`", row):
            path = full or path  # `::name` refers to the last path in the same row
            named.append((path, short))
    # then every one is a test function in that file
    assert len(named) > 25
    missing = [f"{path}::{name}" for path, name in named if f"def {name}(" not in (BASE_DIR / path).read_text()]
    assert missing == []


def test_compose_runs_the_whole_stack_with_health_checks_and_one_beat() -> None:
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "release", "web", "worker", "chain-worker", "beat"}
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    assert services["beat"]["deploy"]["replicas"] == 1
    assert set(compose["volumes"]) == {"pgdata", "redisdata"}
    assert services["web"]["depends_on"]["release"]["condition"] == "service_completed_successfully"


def test_procfile_declares_release_web_workers_and_one_beat() -> None:
    entries = dict(line.split(": ", 1) for line in (BASE_DIR / "Procfile").read_text().splitlines() if line.strip())
    assert set(entries) == {"release", "web", "worker", "chain", "beat"}
    assert "sync_schedules" in entries["release"]
    assert entries["web"].startswith("gunicorn config.wsgi")
    assert "-Q chain --concurrency 1" in entries["chain"]
