#!/usr/bin/env bash
# Build MinIO from source once into a cache outside the checkout and print the binary's path.
# MinIO community edition ships as source only; its own instructions are `go install`.
# The pin is the last commit of the community repository (7aac2a2c5b7c, 2026-02-12), spelled as
# the Go module proxy's pseudo-version for it.
set -euo pipefail

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
exec bash "$(dirname "$0")/../go-install.sh" minio "github.com/minio/minio@$MINIO_VERSION" "a few minutes"
