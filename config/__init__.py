"""Project package: settings, URLs, WSGI and the Celery app (imported here so tasks bind to it)."""

from config.celery_app import app as celery_app

__all__ = ["celery_app"]
