"""App config of agreements: registers its system checks."""

from __future__ import annotations

from django.apps import AppConfig


class AgreementsConfig(AppConfig):
    name = "agreements"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agreements import checks  # noqa: F401 - registers the checks
