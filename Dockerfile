# Production image: web, workers and beat all run from it (see docker-compose.yml and Procfile).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml constraints.txt ./
COPY config ./config
COPY chain ./chain
COPY payouts ./payouts
COPY agreements ./agreements
COPY manage.py Procfile ./
RUN pip install --no-cache-dir -c constraints.txt . \
    && SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 app
USER app

EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "-c", "python:config.gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30", "--access-logfile", "-"]
