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

# Dependencies first, at the exact versions of constraints.txt: this layer depends on
# pyproject.toml and constraints.txt only, so a change to Herald's code reuses it. Flower
# is not a dependency of the package; it ships in the image so that the same image serves
# the dashboard and Flower's HTTP API (POST /api/task/async-apply/herald.send_message).
WORKDIR /src
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['flower']))" > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt -c constraints.txt

# Then Herald itself, its dependencies already in place; pip check fails the build if
# pyproject.toml and the pins disagree.
COPY README.md ./
COPY herald ./herald
RUN pip install --no-cache-dir --no-deps . \
    && pip check \
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
# not consuming). `herald ping` also checks that the state Redis answers, and says what
# failed in one line (docker inspect shows it). Shell form so that $HOSTNAME, the default
# Celery node name's host part, is expanded. Services that are not a worker (Flower)
# override this check.
HEALTHCHECK --interval=30s --timeout=20s --start-period=30s --retries=3 \
    CMD herald ping --worker "celery@$HOSTNAME" --timeout 10 || exit 1

CMD ["herald", "worker"]
