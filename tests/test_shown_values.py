"""What error messages show of a setting or a key: never a password, a query's key or a whole
object key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imgbot.config.settings import load_settings
from imgbot.errors import ConfigError, StorageError
from imgbot.objects.keys import key_label, object_keys
from imgbot.storage_s3 import S3Storage


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://:pa/ss-word@127.0.0.1:99999/0", "pa/ss-word"),
        ("redis://:pa?ss#word@127.0.0.1:99999/0", "pa?ss#word"),
        ("rediss://user:s3cr3t/x@127.0.0.1:abc/0", "s3cr3t/x"),
    ],
)
def test_a_state_url_password_with_url_characters_is_never_shown(url: str, secret: str) -> None:
    """A STATE_URL refused at load names the key and the host, never the password, whatever
    characters the password holds."""
    with pytest.raises(ConfigError) as refused:
        load_settings(s3_access_key="a", s3_secret_key="b", state_url=url)
    assert refused.value.key == "STATE_URL"
    assert secret not in str(refused.value) and "127.0.0.1" in str(refused.value)


def test_a_query_in_a_base_url_is_not_repeated() -> None:
    """A base URL refused for its query does not repeat what the query held (it may be a key)."""
    with pytest.raises(ConfigError) as refused:
        load_settings(
            s3_access_key="a", s3_secret_key="b", openai_base_url="https://proxy/v1?key=sk-live-1"
        )
    assert refused.value.key == "OPENAI_BASE_URL" and "sk-live-1" not in str(refused.value)


def test_a_backslash_in_a_base_url_is_refused() -> None:
    """A backslash, which browsers read as "/" and URL parsers as part of the host, is refused."""
    with pytest.raises(ConfigError) as refused:
        load_settings(s3_access_key="a", s3_secret_key="b", public_base_url="https://cdn.x\\img")
    assert refused.value.key == "PUBLIC_BASE_URL" and "backslash" in str(refused.value)


def test_a_storage_failure_names_the_key_by_its_label(unused_tcp_port: int) -> None:
    """An upload or download that fails names the object by its label, never the whole key."""
    settings = load_settings(
        s3_access_key="a",
        s3_secret_key="b",
        s3_endpoint=f"http://127.0.0.1:{unused_tcp_port}",
        s3_attempts=1,
    )
    storage = S3Storage.from_settings(settings)
    key = object_keys("imagegen/", datetime.now(UTC), "png", "jpg")[0]
    for call in (
        lambda: storage.put(
            key,
            b"x",
            content_type="image/png",
            cache_control="private",
            content_disposition="inline",
            metadata={},
        ),
        lambda: storage.get(key, 10),
    ):
        with pytest.raises(StorageError) as failed:
            call()
        assert key_label(key) in str(failed.value) and key not in str(failed.value)
