"""The storage part of /healthz: a failed picture upload is not healed by the probe's empty
object; it holds until a picture is stored or UPLOAD_FAILURE_HOLD_SECONDS pass (clock seam)."""

from __future__ import annotations

from imgbot.service.health import UPLOAD_FAILURE_HOLD_SECONDS, Health
from imgbot.service.metrics import Metrics


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def healthy_bot(clock: Clock) -> Health:
    health = Health(clock)
    health.connection(True)
    health.store_answered()
    health.storage_answered()
    return health


def probe(health: Health, clock: Clock, seconds: float) -> None:
    """Move on ``seconds``; the 30 s probe succeeds (full storage still takes an empty object)."""
    clock.now += seconds
    health.storage_answered()
    health.store_answered()


def test_probe_does_not_heal_a_failed_upload() -> None:
    """After a failed upload, probes every 30 s keep storage unhealthy; a stored picture heals."""
    clock = Clock()
    health = healthy_bot(clock)
    assert health.report()[0]
    health.upload_failed()
    for _ in range(int(UPLOAD_FAILURE_HOLD_SECONDS // 30) - 1):
        probe(health, clock, 30)
        healthy, detail = health.report()
        assert not healthy and detail["storage_ok"] is False
    health.stored(1000)
    assert health.report()[0]


def test_failed_upload_hold_ends_after_its_time() -> None:
    """With no upload since, the failure stops counting UPLOAD_FAILURE_HOLD_SECONDS after it."""
    clock = Clock()
    health = healthy_bot(clock)
    health.upload_failed()
    probe(health, clock, UPLOAD_FAILURE_HOLD_SECONDS - 1)
    assert not health.report()[0]
    probe(health, clock, 1)
    assert health.report()[0]


def test_failed_upload_is_counted_in_the_metrics() -> None:
    """A failed upload counts in imgbot_storage_upload_failures_total even after the probe."""
    metrics = Metrics()
    metrics.upload_failed()
    metrics.storage_answered()
    sample = metrics.registry.get_sample_value
    assert sample("imgbot_storage_upload_failures_total") == 1
    assert sample("imgbot_storage_up") == 1
