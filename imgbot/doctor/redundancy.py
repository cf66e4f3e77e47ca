"""Doctor's MinIO redundancy check: does the deployment hold write quorum, and with what margin?

MinIO answers `GET /minio/health/cluster` without credentials: 200 while enough drives are online
to write (its write quorum, sent as `X-Minio-Write-Quorum`), 503 when not. With
`?maintenance=true` it answers as if the node that answered were down (412 when that would lose
quorum). Neither says how many drives are offline: `mc admin info` (admin keys) does.
"""

from __future__ import annotations

from imgbot.config.settings import Settings
from imgbot.doctor.check import Check, http_get

NAME = "storage redundancy"
HEALTH_PATH = "/minio/health/cluster"
LOST_QUORUM_FIX = (
    "bring the stopped MinIO nodes or drives back (mc admin info shows which); "
    "links to stored images keep loading while the read quorum holds"
)


def cluster(settings: Settings) -> tuple[Check, bool]:
    """Report MinIO's own view of its write quorum (only for S3_PROVIDER=minio), and whether
    the server answered as MinIO at all."""
    check = _cluster(settings)
    return check, not check.detail.startswith(NOT_MINIO)


NOT_MINIO = "not measured: the server is not MinIO"


def _cluster(settings: Settings) -> Check:
    base = settings.endpoint.rstrip("/")
    timeout = settings.s3_timeout_seconds
    try:
        status, headers, _ = http_get(base + HEALTH_PATH, timeout)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(
            NAME,
            False,
            f"{HEALTH_PATH} did not answer ({reason})",
            "check the MinIO nodes (mc admin info) and S3_TIMEOUT_SECONDS",
        )
    quorum = _header(headers, "X-Minio-Write-Quorum")
    needs = f"{quorum} drives needed to write" if quorum else "write quorum"
    if status == 503:
        starting = _header(headers, "X-Minio-Server-Status")
        if starting:
            return Check(NAME, False, f"MinIO is not ready ({starting})", "wait, then run again")
        return Check(
            NAME, False, f"MinIO has lost write quorum ({needs}): uploads fail", LOST_QUORUM_FIX
        )
    if status != 200:
        # Not MinIO's health API: another S3 behind S3_PROVIDER=minio (or a proxy refusing it).
        return Check(
            NAME,
            False,
            f"{NOT_MINIO} ({HEALTH_PATH} answered HTTP {status}), yet S3_PROVIDER=minio",
            "set S3_PROVIDER=s3 for another S3 server; if MinIO is behind a proxy, let the "
            "proxy pass /minio/health/",
        )
    return Check(NAME, True, _healthy_detail(base, quorum, needs, headers, timeout))


def _healthy_detail(
    base: str, quorum: str, needs: str, headers: dict[str, str], timeout: float
) -> str:
    healing = _header(headers, "X-Minio-Healing-Drives")
    suffix = f"; MinIO is healing {healing} drive(s)" if healing else ""
    if quorum == "1":
        return f"one drive, no redundancy (several drives: infra/README.md){suffix}"
    try:
        margin, _, _ = http_get(base + HEALTH_PATH + "?maintenance=true", timeout)
    except (OSError, ValueError):
        margin = 0
    if margin == 200:
        return f"write quorum held ({needs}); the node that answered could be lost{suffix}"
    if margin == 412:
        # Also the normal state of a single node with several drives: it has no other node.
        return (
            f"write quorum held ({needs}); losing the node that answered would stop uploads{suffix}"
        )
    return f"write quorum held ({needs}){suffix}"


def _header(headers: dict[str, str], name: str) -> str:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")
