"""The observation seam: what the pipeline and the bot report, with a no-op default."""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    """Receives events; ``imgbot.service.metrics.Metrics`` turns them into Prometheus metrics."""

    def stage(self, name: str, seconds: float) -> None:
        """One stage (generate, prepare, upload, reply) took ``seconds``."""

    def stored(self, nbytes: int) -> None:
        """``nbytes`` were written to storage (storage answered)."""

    def storage_answered(self) -> None:
        """Storage answered a call (a probe or an upload)."""

    def storage_failed(self) -> None:
        """A storage call failed (the probe)."""

    def upload_failed(self) -> None:
        """Storing a picture failed (storage may still take the probe's empty object)."""

    def store_answered(self) -> None:
        """The state store answered a call."""

    def store_failed(self) -> None:
        """The state store did not answer a call (StoreUnavailable)."""

    def frame(self, kind: str) -> None:
        """A stream frame was taken: ``message``, ``duplicate`` or ``malformed``."""

    def outcome(self, name: str) -> None:
        """A message was handled with this outcome."""

    def in_flight(self, delta: int) -> None:
        """Requests being drawn went up or down by ``delta``."""

    def retry(self, what: str) -> None:
        """A call to ``what`` (reply, a generator, the stream) is being retried."""

    def connection(self, up: bool) -> None:
        """The DingTalk stream connection opened (True) or closed (False)."""


class NoObserver:
    """Ignores every event."""

    def stage(self, name: str, seconds: float) -> None:
        """Ignore."""

    def stored(self, nbytes: int) -> None:
        """Ignore."""

    def storage_answered(self) -> None:
        """Ignore."""

    def storage_failed(self) -> None:
        """Ignore."""

    def upload_failed(self) -> None:
        """Ignore."""

    def store_answered(self) -> None:
        """Ignore."""

    def store_failed(self) -> None:
        """Ignore."""

    def frame(self, kind: str) -> None:
        """Ignore."""

    def outcome(self, name: str) -> None:
        """Ignore."""

    def in_flight(self, delta: int) -> None:
        """Ignore."""

    def retry(self, what: str) -> None:
        """Ignore."""

    def connection(self, up: bool) -> None:
        """Ignore."""


class Observers:
    """Passes every event on to each of several observers (metrics and health, in the bot)."""

    def __init__(self, *observers: Observer) -> None:
        self._all = observers

    def stage(self, name: str, seconds: float) -> None:
        """Pass on."""
        for observer in self._all:
            observer.stage(name, seconds)

    def stored(self, nbytes: int) -> None:
        """Pass on."""
        for observer in self._all:
            observer.stored(nbytes)

    def storage_answered(self) -> None:
        """Pass on."""
        for observer in self._all:
            observer.storage_answered()

    def storage_failed(self) -> None:
        """Pass on."""
        for observer in self._all:
            observer.storage_failed()

    def upload_failed(self) -> None:
        """Pass on."""
        for observer in self._all:
            observer.upload_failed()

    def store_answered(self) -> None:
        """Pass on."""
        for observer in self._all:
            observer.store_answered()

    def store_failed(self) -> None:
        """Pass on."""
        for observer in self._all:
            observer.store_failed()

    def frame(self, kind: str) -> None:
        """Pass on."""
        for observer in self._all:
            observer.frame(kind)

    def outcome(self, name: str) -> None:
        """Pass on."""
        for observer in self._all:
            observer.outcome(name)

    def in_flight(self, delta: int) -> None:
        """Pass on."""
        for observer in self._all:
            observer.in_flight(delta)

    def retry(self, what: str) -> None:
        """Pass on."""
        for observer in self._all:
            observer.retry(what)

    def connection(self, up: bool) -> None:
        """Pass on."""
        for observer in self._all:
            observer.connection(up)
