#!/usr/bin/env bash
# Start a local single-node MinIO on loopback for imgbot, with its data under the project.
# Reads MINIO_ROOT_USER/MINIO_ROOT_PASSWORD from .data/minio-root.env (written by `make run`,
# mode 600; MINIO_ROOT_ENV names another file), else from the environment or .env; never from
# S3_ACCESS_KEY/S3_SECRET_KEY, which are the bot's own least-privilege keys. Ports come from the
# environment. Prints the S3 and console addresses; waits until ready. `make stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -f .env ]]; then set -a; source .env; set +a; fi
ROOT_ENV="${MINIO_ROOT_ENV:-$PWD/.data/minio-root.env}"
if [[ -f "$ROOT_ENV" ]]; then set -a; source "$ROOT_ENV"; set +a; fi
BIN="$(bash infra/minio/build.sh)"
HOST="${MINIO_HOST:-127.0.0.1}"
PORT="${MINIO_PORT:-9000}"
CONSOLE_PORT="${MINIO_CONSOLE_PORT:-9001}"
DATA="${MINIO_DATA_DIR:-$PWD/.data/minio}"
LOG="${MINIO_LOG:-$PWD/.data/minio.log}"
NO_ROOT="no MinIO root keys: run make run (it writes $ROOT_ENV) or set MINIO_ROOT_USER/MINIO_ROOT_PASSWORD"
export MINIO_ROOT_USER="${MINIO_ROOT_USER:?$NO_ROOT}"
export MINIO_ROOT_PASSWORD="${MINIO_ROOT_PASSWORD:?$NO_ROOT}"
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
