"""App config for the project package, so it can ship management commands and periodic tasks."""

from __future__ import annotations

from django.apps import AppConfig


class ConfigAppConfig(AppConfig):
    name = "config"
    label = "config"
    verbose_name = "Project"

    def ready(self) -> None:
        from config import throttling  # noqa: F401 - registers the rate settings' check
