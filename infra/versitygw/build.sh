#!/usr/bin/env bash
# Build versitygw (Apache-2.0, an S3 gateway without the lifecycle API) once into the same cache as
# MinIO and print the binary's path. The tests use it as the real server whose
# PutBucketLifecycleConfiguration answers 501 NotImplemented; imgbot does not need it to run.
set -euo pipefail

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
exec bash "$(dirname "$0")/../go-install.sh" versitygw \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" "about a minute"
