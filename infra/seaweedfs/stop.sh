#!/usr/bin/env bash
# `make stop`: stop the local SeaweedFS that infra/seaweedfs/start.sh started, by its pid file.
set -euo pipefail
cd "$(dirname "$0")/../.."

PID_FILE="${SEAWEEDFS_PID_FILE:-$PWD/.data/seaweedfs.pid}"
[[ -f "$PID_FILE" ]] || exit 0  # never started here: nothing to say
pid="$(cat "$PID_FILE")"
# Only the process start.sh started: a stale pid may belong to something else by now.
if [[ ! "$pid" =~ ^[0-9]+$ ]] \
    || ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'weed mini'; then
    echo "SeaweedFS (pid ${pid:-?}) is not running"
    rm -f "$PID_FILE"
    exit 0
fi
kill -TERM "$pid"
for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "SeaweedFS (pid $pid) did not stop within 15 s; try again or kill $pid" >&2
    exit 1
fi
rm -f "$PID_FILE"
echo "stopped the local SeaweedFS (pid $pid); its data stays in .data/seaweedfs"
