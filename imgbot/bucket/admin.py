"""Bucket administration through boto3: bucket, lifecycle, policy, ACL, and a short lease.

These are the calls ``imgbot setup`` makes with admin keys (and doctor's read-only checks), kept
apart from the bot's data path in ``storage_s3``, whose client and error translation they share.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from imgbot.config.settings import Settings
from imgbot.errors import StorageError
from imgbot.storage_s3 import MISSING, TAKEN, build_client, translated

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
_NO_LIFECYCLE = {"NoSuchLifecycleConfiguration"}
_NO_POLICY = {"NoSuchBucketPolicy"}
_NOT_IMPLEMENTED = frozenset({"NotImplemented", "NotSupported", "501"})
_NO_ACL = set(_NOT_IMPLEMENTED)
_PUBLIC_GROUPS = ("/global/AllUsers", "/global/AuthenticatedUsers")


class LeaseHeld(StorageError):
    """Someone else holds the lease; ``age`` is how long ago it was taken, in seconds."""

    def __init__(self, message: str, *, age: float) -> None:
        self.age = age
        super().__init__(message, code="LeaseHeld")


class LifecycleUnsupported(StorageError):
    """The server has no lifecycle API (it answered NotImplemented): it cannot expire objects."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation}: this storage cannot expire objects (no lifecycle API)",
            code="LifecycleUnsupported",
        )


class BucketAdmin:
    """Administration of one bucket; needs keys allowed to change it (not the bot user's)."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> BucketAdmin:
        """Build administration for the configured bucket."""
        return cls(build_client(settings), settings.s3_bucket)

    def __repr__(self) -> str:
        return f"BucketAdmin(bucket={self.bucket!r}, endpoint={self._client.meta.endpoint_url!r})"

    def exists(self) -> bool:
        """True if the bucket exists and these keys may use it."""
        try:
            with translated("check bucket", self.bucket):
                self._client.head_bucket(Bucket=self.bucket)
        except StorageError as exc:
            if exc.code in MISSING:
                return False
            if exc.code == "403":
                # A HEAD answer has no body, so "403" is all it says: ask again with a GET,
                # whose error names the cause (wrong keys, or keys that may not do this).
                self.policy()
                return True
            raise
        return True

    def server_software(self) -> str:
        """What the storage calls itself (the ``Server`` header of a bucket HEAD), or ""."""
        try:
            with translated("check bucket", self.bucket):
                answer = self._client.head_bucket(Bucket=self.bucket)
        except StorageError:
            return ""
        return str(answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server", ""))

    def create(self, region: str) -> None:
        """Create the bucket (private, the S3 default)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            with translated("create bucket", self.bucket):
                self._client.create_bucket(**kwargs)
        except StorageError as exc:
            # A retried create whose first attempt succeeded (an answer lost on the way back, or
            # another node of a cluster that saw it first) is done, not failed.
            if exc.code != "BucketAlreadyOwnedByYou":
                raise

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        """The bucket's lifecycle rules; empty when it has none; ``LifecycleUnsupported`` when
        the server has no lifecycle API."""
        with _lifecycle_api("read lifecycle"):
            rules: list[dict[str, Any]] = self._optional(
                "read lifecycle",
                _NO_LIFECYCLE,
                [],
                lambda: list(
                    self._client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get(
                        "Rules", []
                    )
                ),
            )
        return rules

    def put_lifecycle_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the whole lifecycle configuration with ``rules``."""
        with _lifecycle_api("write lifecycle"), translated("write lifecycle", self.bucket):
            self._client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration={"Rules": rules},  # type: ignore[typeddict-item]
            )

    def policy(self) -> dict[str, Any] | None:
        """The bucket policy document, or None."""
        text = self._optional(
            "read bucket policy",
            _NO_POLICY,
            None,
            lambda: self._client.get_bucket_policy(Bucket=self.bucket)["Policy"],
        )
        return json.loads(text) if text else None

    def put_policy(self, document: dict[str, Any] | None) -> None:
        """Write the bucket policy, or delete it when ``document`` is None or has no statements."""
        with translated("write bucket policy", self.bucket):
            if document and document.get("Statement"):
                self._client.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(document))
            else:
                self._client.delete_bucket_policy(Bucket=self.bucket)

    def make_acl_private(self) -> bool:
        """Set the bucket ACL to private if it grants anything to all users; True if changed.

        COS "public read" and S3 public-read buckets are opened by ACL, not by policy.
        """
        acl = self._optional(
            "read bucket ACL",
            _NO_ACL,
            None,
            lambda: self._client.get_bucket_acl(Bucket=self.bucket),
        )
        grants = (acl or {}).get("Grants", [])
        if not any(g.get("Grantee", {}).get("URI", "").endswith(_PUBLIC_GROUPS) for g in grants):
            return False
        with translated("write bucket ACL", self.bucket):
            self._client.put_bucket_acl(Bucket=self.bucket, ACL="private")
        return True

    def can_list_buckets(self) -> bool:
        """True if these keys may list every bucket: admin keys, or broader than the bot needs.

        A listing that leaves out our own bucket is no such right: SeaweedFS answers ListBuckets
        to every identity with only the buckets it may list, an empty list for the bot's.
        """
        try:
            with translated("list buckets", "of the account"):
                answer = self._client.list_buckets()
        except StorageError as exc:
            if exc.code in ("AccessDenied", "403"):
                return False
            raise
        return any(b.get("Name") == self.bucket for b in answer.get("Buckets", []))

    @contextmanager
    def lease(self, key: str, seconds: float) -> Iterator[None]:
        """Hold ``key`` as a lease object for the block, or raise ``LeaseHeld``.

        Taken with a conditional create (``If-None-Match: *``), so only one caller anywhere wins;
        a lease older than ``seconds`` (its holder died) is taken over with ``If-Match`` on its
        ETag, so two callers cannot both take over. Ages are measured on the server's clock.
        """
        body = json.dumps({"host": socket.gethostname(), "token": secrets.token_hex(8)}).encode()
        etag = self._take(key, body, seconds)
        try:
            yield
        finally:
            self._release(key, etag)

    def _take(self, key: str, body: bytes, seconds: float) -> str:
        try:
            with translated("take lease", key):
                return self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*"
                )["ETag"]
        except StorageError as exc:
            if exc.code not in TAKEN:
                raise
        with translated("read lease", key):
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        server_now = head["ResponseMetadata"]["HTTPHeaders"].get("date")
        age = _age(head["LastModified"], server_now)
        if age < seconds:
            raise LeaseHeld(f"{key} was taken {age:.0f} s ago", age=age)
        try:
            with translated("take over lease", key):
                return self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, IfMatch=head["ETag"]
                )["ETag"]
        except StorageError as exc:
            if exc.code in TAKEN:
                raise LeaseHeld(f"{key} was just taken over by another caller", age=0) from None
            raise

    def _release(self, key: str, etag: str) -> None:
        try:
            with translated("release lease", key):
                # Delete only our own lease (MinIO ignores If-Match on DELETE, so check first).
                if self._client.head_object(Bucket=self.bucket, Key=key)["ETag"] == etag:
                    self._client.delete_object(Bucket=self.bucket, Key=key)
        except StorageError as exc:
            log.warning("lease %s not released (it expires by itself): %s", key, exc)

    def _optional(
        self, operation: str, absent: set[str], default: Any, call: Callable[[], Any]
    ) -> Any:
        try:
            with translated(operation, self.bucket):
                return call()
        except StorageError as exc:
            if exc.code in absent:
                return default
            raise


@contextmanager
def _lifecycle_api(operation: str) -> Iterator[None]:
    """Turn a NotImplemented answer to a lifecycle call into ``LifecycleUnsupported``."""
    try:
        yield
    except StorageError as exc:
        if exc.code in _NOT_IMPLEMENTED:
            raise LifecycleUnsupported(operation) from None
        raise


def _age(last_modified: Any, server_date: str | None) -> float:
    """Seconds since ``last_modified`` by the server's clock (its Date header) when it sent one."""
    now = parsedate_to_datetime(server_date) if server_date else datetime.now(UTC)
    return max(0.0, float((now - last_modified).total_seconds()))
