"""App config of payouts: registers its chain event processors and transaction handler."""

from __future__ import annotations

from django.apps import AppConfig


class PayoutsConfig(AppConfig):
    name = "payouts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from payouts import processors

        processors.register()
