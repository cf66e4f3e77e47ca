#!/usr/bin/env bash
# Build a Go server once into imgbot's cache outside the checkout and print the binary's path.
# Usage: infra/go-install.sh NAME MODULE@VERSION WHAT
#   NAME     the binary and cache folder name (minio, versitygw)
#   MODULE   the `go install` path with its version
#   WHAT     how long the first build takes, for the message ("a few minutes")
# The binary lands in $IMGBOT_CACHE (default ~/.cache/imgbot)/NAME-VERSION/bin/NAME; a later call
# prints it without building.
set -euo pipefail

NAME="$1"
MODULE="$2"
WHAT="${3:-a few minutes}"
VERSION="${MODULE##*@}"
CACHE_ROOT="${IMGBOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imgbot}"
BIN_DIR="$CACHE_ROOT/$NAME-$VERSION/bin"
BIN="$BIN_DIR/$NAME"

if [[ -x "$BIN" ]]; then
    echo "$BIN"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "infra/go-install.sh: Go 1.24 or newer is needed to build $NAME" >&2
    exit 1
fi
echo "infra/go-install.sh: building $NAME $VERSION (first time only, $WHAT)..." >&2
started=$(date +%s)
mkdir -p "$BIN_DIR.tmp"
# Build in an empty directory so no go.mod around us interferes.
(cd "$(mktemp -d)" && GOBIN="$BIN_DIR.tmp" GOFLAGS=-buildvcs=false go install "$MODULE") >&2
rm -rf "$BIN_DIR" && mv "$BIN_DIR.tmp" "$BIN_DIR"
echo "infra/go-install.sh: built $NAME in $(( $(date +%s) - started )) s: $BIN" >&2
echo "$BIN"
