#!/usr/bin/env bash
# Build MinIO from source once into a cache outside the checkout and print the binary's path.
# MinIO community edition ships as source only; its own instructions are `go install`.
# The pin is the last commit of the community repository (7aac2a2c5b7c, 2026-02-12), spelled as
# the Go module proxy's pseudo-version for it.
set -euo pipefail

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
CACHE_ROOT="${IMGBOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imgbot}"
BIN_DIR="$CACHE_ROOT/minio-$MINIO_VERSION/bin"
BIN="$BIN_DIR/minio"

if [[ -x "$BIN" ]]; then
    echo "$BIN"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "infra/minio/build.sh: Go 1.24 or newer is needed to build MinIO" >&2
    exit 1
fi
echo "infra/minio/build.sh: building MinIO $MINIO_VERSION (first time only, a few minutes)..." >&2
started=$(date +%s)
mkdir -p "$BIN_DIR.tmp"
# Build in an empty directory so no go.mod around us interferes.
(cd "$(mktemp -d)" && GOBIN="$BIN_DIR.tmp" GOFLAGS=-buildvcs=false \
    go install "github.com/minio/minio@$MINIO_VERSION") >&2
rm -rf "$BIN_DIR" && mv "$BIN_DIR.tmp" "$BIN_DIR"
echo "infra/minio/build.sh: built in $(( $(date +%s) - started )) s: $BIN" >&2
echo "$BIN"
