# syntax=docker/dockerfile:1
# imgbot: `imgbot run` (the bot) by default; the compose file also runs `imgbot setup` with it.
# Build context: the repository root (infra/compose.yaml sets it). Only the files named below are
# copied, so .env, .venv and .data never end up in the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A CJK font, so the offline placeholder generator can draw Chinese prompts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-zenhei \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system imgbot \
    && useradd --system --gid imgbot --home-dir /app --create-home --shell /usr/sbin/nologin imgbot

# The same package versions as `make run` and the tests: uv.lock, exported with its hashes.
ARG UV_VERSION=0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY imgbot ./imgbot
RUN pip install uv==${UV_VERSION} \
    && uv export --frozen --no-dev --no-emit-project --format requirements-txt -o requirements.txt \
    && pip install --require-hashes -r requirements.txt \
    && pip install --no-deps . \
    && pip uninstall -y uv && rm -rf /src

WORKDIR /app
USER imgbot
# The embedded state store's folder, owned by the bot, so a volume mounted here is too.
RUN mkdir -p /app/.data
# /metrics and /healthz; inside a container they must listen on all interfaces to be published.
ENV METRICS_HOST=0.0.0.0 METRICS_PORT=9464
EXPOSE 9464
CMD ["imgbot", "run"]
