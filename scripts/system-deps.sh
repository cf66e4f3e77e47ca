#!/usr/bin/env bash
# System packages imgbot's tests and placeholder pictures use: Chromium for the chat-page test, a
# CJK font so placeholder pictures can show Chinese prompts, and the tools that check the shipped
# deployment files (nginx -t, docker-compose config, systemd-analyze, openssl), and redis-server for
# the shared state store's tests (Debian's package; the tests start their own on a free port), and
# promtool (Debian's prometheus package) for the shipped alert rules, rclone for the bucket
# migration the infra README describes. apt installs what is missing.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]] || missing+=(fonts-wqy-zenhei)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server ]] || missing+=(redis-server)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/system-deps.sh: please install: ${missing[*]}" >&2
    exit 1
fi
echo "scripts/system-deps.sh: installing ${missing[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
