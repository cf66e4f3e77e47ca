#!/usr/bin/env bash
# `make run`: local MinIO + bucket setup + the bot (real DingTalk with credentials, else simulator).
# LOCAL_S3=seaweedfs (environment or .env) starts SeaweedFS instead of MinIO: its admin identity
# stays in .data/seaweedfs/s3.json and runs `imgbot setup`; the bot gets the bot identity's keys.
# MinIO's root keys stay in .data/minio-root.env (mode 600): they start MinIO and run
# `imgbot setup`, nothing else. The bot gets its own least-privilege MinIO user, whose keys go to
# .env, so the links it hands out never carry the root key.
set -euo pipefail
shopt -s lastpipe  # a pipeline's last command runs in this shell (show_steps sets variables)
cd "$(dirname "$0")/.."

ROOT_ENV=.data/minio-root.env
IMGBOT=.venv/bin/imgbot
BOT_USER=imgbot

random_secret() { head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }
env_value() { sed -n "s/^$1=//p" "$2" | tail -n 1; }

# Replace S3_ACCESS_KEY/S3_SECRET_KEY in .env with $BOT_ACCESS/$BOT_SECRET, keeping every other
# line; the values travel in the environment, not on a command line others could read.
write_bot_keys() {
    local tmp
    tmp="$(mktemp .env.XXXXXX)"  # mode 600, like .env
    awk 'BEGIN { a = "S3_ACCESS_KEY=" ENVIRON["BOT_ACCESS"]; s = "S3_SECRET_KEY=" ENVIRON["BOT_SECRET"] }
         /^S3_ACCESS_KEY=/ { if (!da++) print a; next }
         /^S3_SECRET_KEY=/ { if (!ds++) print s; next }
         { print }
         END { if (!da) print a; if (!ds) print s }' .env >"$tmp"
    mv "$tmp" .env
}

# Print `imgbot setup --bot-user`'s lines as they come, except the bot's keys, which are kept in
# BOT_ACCESS/BOT_SECRET (never shown).
show_steps() {
    local line
    BOT_ACCESS="" BOT_SECRET=""
    while IFS= read -r line; do
        case "$line" in
            S3_ACCESS_KEY=*) BOT_ACCESS="${line#S3_ACCESS_KEY=}" ;;
            S3_SECRET_KEY=*) BOT_SECRET="${line#S3_SECRET_KEY=}" ;;
            *"put these lines"*) ;;
            *) printf '%s\n' "$line" ;;
        esac
    done
}

# Do the keys in the environment (.env's) pass the bot's own storage probe on the bucket?
bot_keys_work() {
    .venv/bin/python -c 'from imgbot.config.settings import load_settings
from imgbot.storage_s3 import S3Storage
S3Storage.from_settings(load_settings()).probe()' >/dev/null 2>&1
}

if [[ ! -f .env ]]; then
    (umask 077 && cp .env.example .env)
    echo "created .env (edit it for DingTalk, COS, generators)"
fi
set -a; source .env; set +a

# The identity `name` of SeaweedFS's identities file, as "ACCESS SECRET".
weed_keys() {
    NAME="$1" .venv/bin/python -c 'import json, os, sys
ident = next(i for i in json.load(sys.stdin)["identities"] if i["name"] == os.environ["NAME"])
print(ident["credentials"][0]["accessKey"], ident["credentials"][0]["secretKey"])' \
        <.data/seaweedfs/s3.json
}

case "${LOCAL_S3:-minio}" in
    minio | seaweedfs) ;;
    *) echo "LOCAL_S3 must be minio or seaweedfs, not '${LOCAL_S3}'" >&2; exit 2 ;;
esac
if [[ "${LOCAL_S3:-minio}" == seaweedfs ]]; then
    # SeaweedFS is "any other S3" to imgbot; .env.example's S3_PROVIDER=minio does not apply.
    export S3_PROVIDER=s3 S3_ENDPOINT="${S3_ENDPOINT:-http://127.0.0.1:8333}"
    [[ "$S3_ENDPOINT" =~ ^http://(127\.0\.0\.1|localhost):[0-9]+$ ]] \
        || { echo "LOCAL_S3=seaweedfs needs S3_ENDPOINT=http://127.0.0.1:<port>" >&2; exit 2; }
    SEAWEEDFS_PORT="${S3_ENDPOINT##*:}" bash infra/seaweedfs/start.sh
    echo "SeaweedFS keeps running after the bot stops; stop it with: make stop"
    read -r admin_access admin_secret <<<"$(weed_keys imgbot-admin)"
    S3_ACCESS_KEY="$admin_access" S3_SECRET_KEY="$admin_secret" "$IMGBOT" setup
    unset admin_access admin_secret
    read -r BOT_ACCESS BOT_SECRET <<<"$(weed_keys imgbot)"
    if [[ "${S3_ACCESS_KEY:-}" != "$BOT_ACCESS" || "${S3_SECRET_KEY:-}" != "$BOT_SECRET" ]]; then
        BOT_ACCESS="$BOT_ACCESS" BOT_SECRET="$BOT_SECRET" write_bot_keys
        echo "the bot uses SeaweedFS identity $BOT_ACCESS; its keys are in .env"
    fi
    unset BOT_SECRET
    set -a; source .env; set +a
    export S3_PROVIDER=s3 S3_ENDPOINT="${S3_ENDPOINT:-http://127.0.0.1:8333}"
    if [[ -n "${DINGTALK_CLIENT_ID:-}" ]]; then
        exec "$IMGBOT" run
    fi
    echo "no DINGTALK_CLIENT_ID in .env: running against the built-in DingTalk simulator"
    exec "$IMGBOT" simulate
fi

endpoint="${S3_ENDPOINT:-http://127.0.0.1:9000}"
if [[ "${S3_PROVIDER:-minio}" == "minio" && "$endpoint" =~ ^http://(127\.0\.0\.1|localhost): ]]; then
    fresh_root=no
    if [[ ! -f "$ROOT_ENV" ]]; then
        mkdir -p .data
        if [[ -n "${MINIO_ROOT_USER:-}" && -n "${MINIO_ROOT_PASSWORD:-}" ]]; then
            root_user="$MINIO_ROOT_USER" root_secret="$MINIO_ROOT_PASSWORD"
        elif [[ -n "${S3_ACCESS_KEY:-}" && -n "${S3_SECRET_KEY:-}" && "$S3_ACCESS_KEY" != "$BOT_USER" ]]
        then
            # Earlier versions started MinIO with .env's S3 keys as root (imgbot-admin): keep
            # that pair as root so existing data stays reachable, and give the bot its own user.
            root_user="$S3_ACCESS_KEY" root_secret="$S3_SECRET_KEY"
            echo "moved MinIO's root keys ($root_user) from .env to $ROOT_ENV"
        else  # a new MinIO (or .data was removed): new root keys, and the bot user made anew
            root_user=imgbot-admin root_secret="$(random_secret)" fresh_root=yes
        fi
        (umask 077 && printf 'MINIO_ROOT_USER=%s\nMINIO_ROOT_PASSWORD=%s\n' \
            "$root_user" "$root_secret" >"$ROOT_ENV")
        echo "MinIO's root keys are in $ROOT_ENV (for the console and imgbot setup only)"
    fi
    chmod 600 "$ROOT_ENV"
    root_user="$(env_value MINIO_ROOT_USER "$ROOT_ENV")"
    root_secret="$(env_value MINIO_ROOT_PASSWORD "$ROOT_ENV")"
    port="${endpoint##*:}"
    MINIO_ROOT_ENV="$ROOT_ENV" MINIO_PORT="$port" MINIO_CONSOLE_PORT="${MINIO_CONSOLE_PORT:-$((port + 1))}" \
        bash infra/minio/start.sh
    echo "MinIO keeps running after the bot stops; stop it with: make stop"

    new_user=no
    if [[ -z "${S3_ACCESS_KEY:-}" || "$S3_ACCESS_KEY" == "$root_user" || $fresh_root == yes ]]; then
        new_user=yes
    else
        S3_ACCESS_KEY="$root_user" S3_SECRET_KEY="$root_secret" "$IMGBOT" setup
        # .env's keys may be SeaweedFS's (an earlier LOCAL_S3=seaweedfs) or a stale secret.
        if ! bot_keys_work; then
            echo "the keys in .env do not work on this MinIO: making the bot user $BOT_USER anew"
            new_user=yes
        fi
    fi
    if [[ $new_user == yes ]]; then
        S3_ACCESS_KEY="$root_user" S3_SECRET_KEY="$root_secret" \
            "$IMGBOT" setup --bot-user "$BOT_USER" | show_steps
        [[ -n "$BOT_ACCESS" && -n "$BOT_SECRET" ]] \
            || { echo "imgbot setup printed no keys for the bot user" >&2; exit 1; }
        BOT_ACCESS="$BOT_ACCESS" BOT_SECRET="$BOT_SECRET" write_bot_keys
        unset BOT_SECRET
        echo "the bot uses its own MinIO user $BOT_ACCESS; its keys are in .env"
        set -a; source .env; set +a
    fi
    unset root_user root_secret
else
    "$IMGBOT" setup
fi
unset MINIO_ROOT_USER MINIO_ROOT_PASSWORD  # the bot never needs MinIO's root keys

if [[ -n "${DINGTALK_CLIENT_ID:-}" ]]; then
    exec "$IMGBOT" run
fi
echo "no DINGTALK_CLIENT_ID in .env: running against the built-in DingTalk simulator"
exec "$IMGBOT" simulate
