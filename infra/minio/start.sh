#!/usr/bin/env bash
# Start a local single-node MinIO on loopback for imgbot, with its data under the project.
# Reads MINIO_ROOT_USER/MINIO_ROOT_PASSWORD (default: S3_ACCESS_KEY/S3_SECRET_KEY) and the
# ports from the environment or .env. Prints the S3 and console addresses; waits until ready.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -f .env ]]; then set -a; source .env; set +a; fi
BIN="$(bash infra/minio/build.sh)"
HOST="${MINIO_HOST:-127.0.0.1}"
PORT="${MINIO_PORT:-9000}"
CONSOLE_PORT="${MINIO_CONSOLE_PORT:-9001}"
DATA="${MINIO_DATA_DIR:-$PWD/.data/minio}"
LOG="${MINIO_LOG:-$PWD/.data/minio.log}"
export MINIO_ROOT_USER="${MINIO_ROOT_USER:-${S3_ACCESS_KEY:?set S3_ACCESS_KEY or MINIO_ROOT_USER}}"
export MINIO_ROOT_PASSWORD="${MINIO_ROOT_PASSWORD:-${S3_SECRET_KEY:?set S3_SECRET_KEY or MINIO_ROOT_PASSWORD}}"
export MINIO_BROWSER_REDIRECT=off MINIO_UPDATE=off

mkdir -p "$DATA" "$(dirname "$LOG")"
if curl -fsS "http://$HOST:$PORT/minio/health/live" >/dev/null 2>&1; then
    echo "MinIO already answers on http://$HOST:$PORT"
elif (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
    # The old manual's "server will not start" case: something else holds the port.
    echo "port $PORT on $HOST is taken by another program (see: ss -ltnp 'sport = :$PORT');" \
         "choose another port with S3_ENDPOINT=http://127.0.0.1:<port> in .env" >&2
    exit 1
else
    nohup "$BIN" server "$DATA" --address "$HOST:$PORT" --console-address "$HOST:$CONSOLE_PORT" \
        >>"$LOG" 2>&1 &
    echo $! > "$(dirname "$LOG")/minio.pid"
    for _ in $(seq 1 100); do
        curl -fsS "http://$HOST:$PORT/minio/health/live" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fsS "http://$HOST:$PORT/minio/health/live" >/dev/null \
        || { echo "MinIO did not start; see $LOG" >&2; exit 1; }
fi
echo "MinIO S3 API:  http://$HOST:$PORT"
echo "MinIO console: http://$HOST:$CONSOLE_PORT  (log in with MINIO_ROOT_USER / MINIO_ROOT_PASSWORD)"
