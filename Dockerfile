# Herald worker image: `docker compose up --scale worker=N` (see docker-compose.yml and
# docs/operations.md). The same image runs Flower: `celery -A herald.worker flower`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a home: Herald needs no root, and HERALD_DATA_DIR's default
# (~/.local/share/herald, used only when no broker is set) must be writable.
RUN groupadd --system --gid 10001 herald \
    && useradd --system --uid 10001 --gid herald --create-home --home-dir /home/herald herald \
    && mkdir -p /etc/herald

# Flower is not a dependency of the package; it ships in the image so that the same image
# serves the dashboard and Flower's HTTP API (POST /api/task/async-apply/herald.send_message).
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir ".[flower]" \
    && cd / && rm -rf /src

# The channels file is mounted read-only at this path; its secrets stay in the
# environment (`${WA_TOKEN}` in the file). A missing snippets file is an empty library.
ENV HERALD_CHANNELS_FILE=/etc/herald/channels.toml \
    HERALD_SNIPPETS_FILE=/etc/herald/snippets.toml

USER herald
WORKDIR /home/herald

# SIGTERM is Celery's warm shutdown: stop consuming, finish (or, past the soft shutdown
# timeout, hand back) the jobs in hand, then exit. The orchestrator's grace period must be
# longer than that (docker-compose.yml: stop_grace_period).
STOPSIGNAL SIGTERM

# Healthy means this very worker answers a broadcast ping through the broker: it is
# connected and its consumer loop runs (a Redis restart can leave a worker up but silently
# not consuming). Shell form so that $HOSTNAME, the default Celery node name's host part,
# is expanded. Services that are not a worker (Flower) override this check.
HEALTHCHECK --interval=30s --timeout=20s --start-period=30s --retries=3 \
    CMD celery -A herald.worker inspect ping --timeout 10 -d "celery@$HOSTNAME" || exit 1

CMD ["herald", "worker"]
