#!/usr/bin/env bash
# `make stop`: stop the local MinIO that infra/minio/start.sh (make run) started, by its pid file.
set -euo pipefail
cd "$(dirname "$0")/../.."

PID_FILE="${MINIO_PID_FILE:-$PWD/.data/minio.pid}"
if [[ ! -f "$PID_FILE" ]]; then
    echo "no local MinIO started by make run ($PID_FILE is missing)"
    exit 0
fi
pid="$(cat "$PID_FILE")"
# Only the process start.sh started: a stale pid may belong to something else by now.
if [[ ! "$pid" =~ ^[0-9]+$ ]] \
    || ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'minio server'; then
    echo "MinIO (pid ${pid:-?}) is not running"
    rm -f "$PID_FILE"
    exit 0
fi
kill -TERM "$pid"
for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "MinIO (pid $pid) did not stop within 10 s; try again or kill $pid" >&2
    exit 1
fi
rm -f "$PID_FILE"
echo "stopped the local MinIO (pid $pid); its data stays in .data/minio"
