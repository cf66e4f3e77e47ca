#!/usr/bin/env bash
# System packages imgbot's tests and placeholder pictures use: Chromium for the chat-page test and
# a CJK font so placeholder pictures can show Chinese prompts. Installed with apt when missing.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]] || missing+=(fonts-wqy-zenhei)
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
