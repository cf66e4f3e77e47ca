# syntax=docker/dockerfile:1
# MinIO built from source, as its community edition is distributed: `go install` at a pinned
# pseudo-version (commit 7aac2a2c5b7c, the last of the community repository; the same pin as
# infra/minio/build.sh). Used by infra/compose.yaml; build context: infra/docker.
ARG GO_VERSION=1.24

FROM golang:${GO_VERSION}-bookworm AS build
ARG MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
# A Go module mirror, e.g. --build-arg GOPROXY=https://goproxy.cn,direct on servers in mainland
# China; empty means Go's default. (A build argument is visible to RUN, not kept in the image.)
ARG GOPROXY=
# A static binary (no cgo), so the runtime stage needs no C library of the builder's.
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
RUN go install "github.com/minio/minio@${MINIO_VERSION}" \
    && /go/bin/minio --version

FROM alpine:3.20
# busybox wget (part of Alpine) is what the compose health check calls on /minio/health/live.
# /data1../data4 are the drives of compose.erasure.yaml: an empty named volume takes the owner of
# the folder it is mounted on, so they must exist here, owned by minio-user.
RUN addgroup -S minio-user \
    && adduser -S -D -G minio-user -h /home/minio-user -s /sbin/nologin minio-user \
    && mkdir -p /data /data1 /data2 /data3 /data4 \
    && chown minio-user:minio-user /data /data1 /data2 /data3 /data4
COPY --from=build /go/bin/minio /usr/local/bin/minio
USER minio-user
VOLUME ["/data"]
EXPOSE 9000 9001
ENV MINIO_UPDATE=off
ENTRYPOINT ["/usr/local/bin/minio"]
CMD ["server", "/data", "--address", ":9000", "--console-address", ":9001"]
