#!/usr/bin/env bash
# Build versitygw (Apache-2.0, an S3 gateway without the lifecycle API) once into the same cache as
# MinIO and print the binary's path. The tests use it as the real server whose
# PutBucketLifecycleConfiguration answers 501 NotImplemented; imgbot does not need it to run.
set -euo pipefail

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
CACHE_ROOT="${IMGBOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imgbot}"
BIN_DIR="$CACHE_ROOT/versitygw-$VERSITYGW_VERSION/bin"
BIN="$BIN_DIR/versitygw"

if [[ -x "$BIN" ]]; then
    echo "$BIN"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "infra/versitygw/build.sh: Go 1.24 or newer is needed to build versitygw" >&2
    exit 1
fi
echo "infra/versitygw/build.sh: building versitygw $VERSITYGW_VERSION (first time only, about a minute)..." >&2
started=$(date +%s)
mkdir -p "$BIN_DIR.tmp"
# Build in an empty directory so no go.mod around us interferes.
(cd "$(mktemp -d)" && GOBIN="$BIN_DIR.tmp" GOFLAGS=-buildvcs=false \
    go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") >&2
rm -rf "$BIN_DIR" && mv "$BIN_DIR.tmp" "$BIN_DIR"
echo "infra/versitygw/build.sh: built in $(( $(date +%s) - started )) s: $BIN" >&2
echo "$BIN"
