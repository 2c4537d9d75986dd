"""`manage.py sync_schedules`: write the schedules declared in code to the beat tables (run on release)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.celery_app import app, declared_schedules
from config.schedules import ScheduleError, sync_schedules


class Command(BaseCommand):
    help = "Create, update and remove periodic schedules so that they match config/celery_app.py."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = sync_schedules(declared_schedules(), app)
        except ScheduleError as exc:
            raise CommandError(str(exc)) from exc
        for label in ("created", "updated", "unchanged", "removed"):
            names = getattr(report, label)
            self.stdout.write(f"{label}: {len(names)}" + (f" ({', '.join(names)})" if names else ""))
