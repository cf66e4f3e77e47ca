"""Prometheus metrics: the ``Observer`` that records what the pipeline and the bot report."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from imgbot.bucket.usage import Usage

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """An ``Observer`` that records into its own Prometheus registry; the reading methods
    below read that registry back (for tests and benchmarks)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._messages = Counter(
            "imgbot_messages", "Messages handled, by outcome.", ["outcome"], registry=self.registry
        )
        self._frames = Counter(
            "imgbot_frames",
            "Stream frames taken, by kind (message, duplicate, malformed).",
            ["kind"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            "imgbot_stage_seconds",
            "Duration of generate, prepare, upload and reply, in seconds.",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._stored_bytes = Counter(
            "imgbot_stored_bytes", "Bytes written to object storage.", registry=self.registry
        )
        self._retries = Counter(
            "imgbot_retries",
            "Retried calls, by what was retried.",
            ["what"],
            registry=self.registry,
        )
        self._in_flight_gauge = Gauge(
            "imgbot_in_flight_requests",
            "Requests being generated and published now.",
            registry=self.registry,
        )
        self._peak_gauge = Gauge(
            "imgbot_in_flight_requests_peak",
            "Most requests in flight at once since start.",
            registry=self.registry,
        )
        self._storage_up = Gauge(
            "imgbot_storage_up",
            "1 when the last storage call (probe or upload) succeeded, else 0.",
            registry=self.registry,
        )
        self._store_up = Gauge(
            "imgbot_state_store_up",
            "1 when the last state store call (probe, admission or job) succeeded, else 0.",
            registry=self.registry,
        )
        self._waiting_gauge = Gauge(
            "imgbot_jobs_waiting",
            "Accepted requests waiting for a worker, deployment-wide (from the store's probe).",
            registry=self.registry,
        )
        self._connected_gauge = Gauge(
            "imgbot_dingtalk_connected",
            "1 while the DingTalk stream connection is open, else 0.",
            registry=self.registry,
        )

        self._upload_failures = Counter(
            "imgbot_storage_upload_failures",
            "Pictures storage did not take (an upload failed), even if the probe answers.",
            registry=self.registry,
        )

        # Storage usage, from the server's own figures (bucket.usage); absent until known.
        self._usage_available = Gauge(
            "imgbot_storage_usage_available",
            "1 when the storage server's usage figures were read at the last refresh, else 0.",
            registry=self.registry,
        )
        self._prefix_bytes = Gauge(
            "imgbot_storage_prefix_bytes",
            "Bytes under S3_PREFIX, as the storage server last counted them.",
            ["bucket", "prefix"],
            registry=self.registry,
        )
        self._bucket_bytes = Gauge(
            "imgbot_storage_bucket_bytes",
            "Bytes in the whole bucket, as the storage server last counted them.",
            ["bucket"],
            registry=self.registry,
        )
        self._bucket_objects = Gauge(
            "imgbot_storage_bucket_objects",
            "Objects in the whole bucket (not only under S3_PREFIX: the count of objects under "
            "the prefix is unavailable, neither MinIO nor SeaweedFS gives one), as the storage "
            "server last counted them.",
            ["bucket"],
            registry=self.registry,
        )

    def storage_usage(self, usage: Usage | None) -> None:
        """The storage's usage figures as just read; None when they could not be read (the
        last figures read stay, with the availability gauge at 0)."""
        self._usage_available.set(0 if usage is None else 1)
        if usage is None:
            return
        if usage.prefix_bytes is not None:
            self._prefix_bytes.labels(usage.bucket, usage.prefix).set(usage.prefix_bytes)
        if usage.bucket_bytes is not None:
            self._bucket_bytes.labels(usage.bucket).set(usage.bucket_bytes)
        if usage.bucket_objects is not None:
            self._bucket_objects.labels(usage.bucket).set(usage.bucket_objects)

    def stage(self, name: str, seconds: float) -> None:
        """Record a stage duration."""
        self._seconds.labels(name).observe(seconds)

    def stored(self, nbytes: int) -> None:
        """Record stored bytes; storage answered."""
        self._stored_bytes.inc(nbytes)
        self.storage_answered()

    def storage_answered(self) -> None:
        """Storage answered just now."""
        self._storage_up.set(1)

    def storage_failed(self) -> None:
        """A storage call failed just now."""
        self._storage_up.set(0)

    def upload_failed(self) -> None:
        """Storing a picture failed just now (counted: the probe may answer meanwhile)."""
        self._upload_failures.inc()
        self.storage_failed()

    def store_answered(self) -> None:
        """The state store answered just now."""
        self._store_up.set(1)

    def store_failed(self) -> None:
        """A state store call failed just now."""
        self._store_up.set(0)

    def jobs_waiting(self, count: int) -> None:
        """The store's count of waiting jobs, as the probe read it."""
        self._waiting_gauge.set(count)

    def frame(self, kind: str) -> None:
        """Count a stream frame."""
        self._frames.labels(kind).inc()

    def outcome(self, name: str) -> None:
        """Count a handled message."""
        self._messages.labels(name).inc()

    def in_flight(self, delta: int) -> None:
        """Move the in-flight gauge and its high-water mark."""
        self._in_flight_gauge.inc(delta)
        now = self.in_flight_now
        if now > self.peak_in_flight:
            self._peak_gauge.set(now)

    def retry(self, what: str) -> None:
        """Count a retry."""
        self._retries.labels(what).inc()

    def connection(self, up: bool) -> None:
        """The stream connection opened or closed."""
        self._connected_gauge.set(1 if up else 0)

    # Reading -----------------------------------------------------------------------------------

    @property
    def in_flight_now(self) -> int:
        """Requests being drawn now."""
        return int(self.registry.get_sample_value("imgbot_in_flight_requests") or 0)

    @property
    def peak_in_flight(self) -> int:
        """Most requests drawn at once since start."""
        return int(self.registry.get_sample_value("imgbot_in_flight_requests_peak") or 0)

    def outcomes(self) -> dict[str, int]:
        """Messages handled so far, by outcome."""
        return self._by_label("imgbot_messages_total", "outcome")

    def frames(self) -> dict[str, int]:
        """Frames taken so far, by kind."""
        return self._by_label("imgbot_frames_total", "kind")

    def retries(self) -> dict[str, int]:
        """Retries so far, by what was retried."""
        return self._by_label("imgbot_retries_total", "what")

    def _by_label(self, sample: str, label: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for metric in self.registry.collect():
            for s in metric.samples:
                if s.name == sample:
                    counts[s.labels[label]] = int(s.value)
        return counts
