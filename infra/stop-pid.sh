#!/usr/bin/env bash
# Stop a local server that a start.sh under infra/ started, by its pid file.
# Usage: infra/stop-pid.sh NAME PID_FILE COMMAND SECONDS DATA [MISSING]
#   NAME      the server's name in messages (MinIO, SeaweedFS)
#   PID_FILE  the file start.sh wrote the pid to
#   COMMAND   what its command line holds ('minio server'): a stale pid may belong to something
#             else by now, which is then left alone
#   SECONDS   how long it may take to stop after SIGTERM
#   DATA      where its data stays, for the last message
#   MISSING   what to say when the pid file is missing (nothing when empty)
set -euo pipefail

NAME="$1" PID_FILE="$2" COMMAND="$3" SECONDS_ALLOWED="$4" DATA="$5" MISSING="${6:-}"
if [[ ! -f "$PID_FILE" ]]; then
    [[ -z "$MISSING" ]] || echo "$MISSING"
    exit 0
fi
pid="$(cat "$PID_FILE")"
if [[ ! "$pid" =~ ^[0-9]+$ ]] \
    || ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$COMMAND"; then
    echo "$NAME (pid ${pid:-?}) is not running"
    rm -f "$PID_FILE"
    exit 0
fi
kill -TERM "$pid"
for _ in $(seq 1 $((SECONDS_ALLOWED * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "$NAME (pid $pid) did not stop within $SECONDS_ALLOWED s; try again or kill $pid" >&2
    exit 1
fi
rm -f "$PID_FILE"
echo "stopped the local $NAME (pid $pid); its data stays in $DATA"
