"""``imgbot doctor``: the old manual's troubleshooting section, run as checks.

Each check gives one line: ok or PROBLEM, what was found, and what to do. Checks that depend on an
earlier one (the bucket needs working credentials, links need a bucket) are skipped when it fails.
On MinIO it also reports MinIO's own view of its redundancy (write quorum). The state store
(STATE_URL) is checked too: reachable, takes writes, Redis 7 or later. It needs only the
bot user's rights: object read/write under the prefix (the health probe's empty object included)
and, to check the rule, lifecycle read (without it the rule is "not measured"; a server without
the lifecycle API is reported as such, and the later checks still run); keys with more (admin
keys) are themselves reported as a problem, since every link carries them.
The generator IMAGE_GENERATOR names is checked for the keys it needs, and BLOCKED_WORDS_FILE is
read, as `imgbot run` does at start. With REPLY_STYLE=card, the app's card permission is checked
(``doctor.cards``).
"""

from __future__ import annotations

from imgbot.bucket.admin import BucketAdmin
from imgbot.chat.blocked_words import BlockedWords
from imgbot.config.settings import Settings
from imgbot.doctor import access, cards, outside, redundancy, state_store, storage
from imgbot.doctor.check import Check
from imgbot.errors import ConfigError
from imgbot.generators import build_generator
from imgbot.storage_s3 import S3Storage

__all__ = ["Check", "doctor"]


def doctor(settings: Settings) -> list[Check]:
    """Run every check and return the results in order."""
    checks = [configuration(settings), state_store.store(settings)]
    data = S3Storage.from_settings(settings)
    admin = BucketAdmin.from_settings(settings)  # read-only calls the bot user may make
    reachable = storage.endpoint(settings, checks)
    minio = False
    if reachable and settings.s3_provider == "minio":
        check, minio = redundancy.cluster(settings)
        checks.append(check)
    if reachable and storage.credentials_and_bucket(data, settings, checks):
        checks.append(storage.least_privilege(admin, settings, minio=minio))
        checks.append(storage.lifecycle(admin, settings))
        access.links(data, settings, checks)
    checks.append(outside.public_address(settings))
    if settings.has_dingtalk_credentials:
        checks.append(outside.dingtalk(settings))
        if settings.reply_style == "card" and checks[-1].ok:
            checks.append(cards.permission(settings))
    return checks


def configuration(settings: Settings) -> Check:
    """Settings loaded (doctor would not have started otherwise), the generator IMAGE_GENERATOR
    names has the keys it needs and BLOCKED_WORDS_FILE reads, as `imgbot run` checks them at
    start."""
    try:
        build_generator(settings)  # only built: a generator connects on its first call
        if settings.blocked_words_file is not None:
            BlockedWords.load(settings.blocked_words_file)
    except ConfigError as exc:
        return Check("configuration", False, str(exc), "set it in .env (see .env.example)")
    return Check("configuration", True, "settings are valid")
