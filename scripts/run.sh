#!/usr/bin/env bash
# `make run`: local MinIO + bucket setup + the bot (real DingTalk with credentials, else simulator).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f .env ]]; then
    secret="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
    sed -e "s/^S3_ACCESS_KEY=$/S3_ACCESS_KEY=imgbot-admin/" \
        -e "s/^S3_SECRET_KEY=$/S3_SECRET_KEY=$secret/" .env.example > .env
    chmod 600 .env
    echo "created .env with new local MinIO credentials (edit it for DingTalk, COS, generators)"
fi
set -a; source .env; set +a

endpoint="${S3_ENDPOINT:-http://127.0.0.1:9000}"
if [[ "${S3_PROVIDER:-minio}" == "minio" && "$endpoint" =~ ^http://(127\.0\.0\.1|localhost): ]]; then
    port="${endpoint##*:}"
    MINIO_PORT="$port" MINIO_CONSOLE_PORT="$((port + 1))" bash infra/minio/start.sh
fi
.venv/bin/imgbot setup
if [[ -n "${DINGTALK_CLIENT_ID:-}" ]]; then
    exec .venv/bin/imgbot run
fi
echo "no DINGTALK_CLIENT_ID in .env: running against the built-in DingTalk simulator"
exec .venv/bin/imgbot simulate
