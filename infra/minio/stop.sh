#!/usr/bin/env bash
# `make stop`: stop the local MinIO that infra/minio/start.sh (make run) started, by its pid file.
set -euo pipefail
cd "$(dirname "$0")/../.."

PID_FILE="${MINIO_PID_FILE:-$PWD/.data/minio.pid}"
exec bash infra/stop-pid.sh MinIO "$PID_FILE" 'minio server' 10 .data/minio \
    "no local MinIO started by make run ($PID_FILE is missing)"
