#!/usr/bin/env bash
# `make stop`: stop the local SeaweedFS that infra/seaweedfs/start.sh started, by its pid file.
set -euo pipefail
cd "$(dirname "$0")/../.."

PID_FILE="${SEAWEEDFS_PID_FILE:-$PWD/.data/seaweedfs.pid}"
# Never started here: nothing to say.
exec bash infra/stop-pid.sh SeaweedFS "$PID_FILE" 'weed mini' 15 .data/seaweedfs
