"""At-least-once delivery of CALLBACK frames: who got which frame, ACK timers, redeliveries.

DingTalk gives each push to one open Stream connection chosen at random and redelivers a CALLBACK
that is not ACKed within about 60 s: same chatbot `msgId`, a new frame `messageId`, to a random
live connection (possibly another one), a bounded number of times. This module keeps that
bookkeeping on the simulator's loop; the gateway does the sending.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from imgbot.simulator.models import JSONDict

log = logging.getLogger(__name__)

DEFAULT_ACK_TIMEOUT_S = 60.0
DEFAULT_MAX_REDELIVERIES = 3

# running: waiting for the ACK; cancelled: the ACK came in time; expired: it did not.
TimerState = Literal["running", "cancelled", "expired"]


@dataclass(frozen=True)
class Delivery:
    """One CALLBACK frame sent: the message it carried, the connection, the attempt (1 = first)."""

    frame_id: str
    msg_id: str
    connection_id: str
    attempt: int


@dataclass
class _Pending:
    """A message not ACKed yet: its body, how often it was sent, the timer of its latest frame."""

    message: JSONDict
    attempts: int = 0
    frame_id: str = ""
    timer: asyncio.TimerHandle | None = None


class DeliveryLedger:
    """Chooses connections, runs one ACK timer per frame and asks for redeliveries when one expires.

    ``redeliver(msg_id)`` is called on the loop when a frame of ``msg_id`` timed out and a
    redelivery is allowed; it sends the next frame and calls ``sent`` again.
    """

    def __init__(
        self,
        *,
        ack_timeout_s: float,
        max_redeliveries: int,
        seed: int | None,
        on_change: Callable[[], None],
    ) -> None:
        if ack_timeout_s <= 0:
            raise ValueError("ack_timeout_s must be positive")
        if max_redeliveries < 0:
            raise ValueError("max_redeliveries must be zero or more")
        self.ack_timeout_s = ack_timeout_s
        self.max_redeliveries = max_redeliveries
        # Not for security: which connection gets a push; seedable so tests can be exact.
        self._rng = random.Random(seed)  # noqa: S311
        self._on_change = on_change
        self.deliveries: list[Delivery] = []
        self.abandoned: list[str] = []
        self._timers: dict[str, TimerState] = {}
        self._pending: dict[str, _Pending] = {}
        self._msg_of_frame: dict[str, str] = {}
        self.redeliver: Callable[[str], None] = lambda _msg_id: None

    def choose(self, connection_ids: Sequence[str]) -> str:
        """One of the live connections, at random (DingTalk's choice: not all, not round-robin)."""
        return self._rng.choice(list(connection_ids))

    def sent(self, message: JSONDict, frame_id: str, connection_id: str) -> Delivery:
        """Record that ``frame_id`` took ``message`` to ``connection_id``; start its ACK timer."""
        msg_id = str(message.get("msgId"))
        pending = self._pending.setdefault(msg_id, _Pending(message))
        pending.attempts += 1
        pending.frame_id = frame_id
        loop = asyncio.get_running_loop()
        pending.timer = loop.call_later(self.ack_timeout_s, self._expire, msg_id, frame_id)
        self._timers[frame_id] = "running"
        self._msg_of_frame[frame_id] = msg_id
        delivery = Delivery(frame_id, msg_id, connection_id, pending.attempts)
        self.deliveries.append(delivery)
        self._on_change()
        return delivery

    def acked(self, frame_id: str) -> None:
        """An ACK for ``frame_id`` arrived: the message is delivered, its timer is cancelled."""
        msg_id = self._msg_of_frame.get(frame_id)
        pending = self._pending.pop(msg_id, None) if msg_id is not None else None
        if pending is None:
            return  # a SYSTEM frame's ACK, or a late ACK of a message already settled
        if pending.timer is not None:
            pending.timer.cancel()
        # A late ACK of an earlier frame settles the message too: its latest frame's timer stops.
        self._timers[pending.frame_id] = "cancelled"
        self._on_change()

    def message(self, msg_id: str) -> JSONDict | None:
        """The body of a message still waiting for its ACK."""
        pending = self._pending.get(msg_id)
        return pending.message if pending is not None else None

    def timer_state(self, frame_id: str) -> TimerState | None:
        """The ACK timer of a CALLBACK frame; None for a frame that is not a CALLBACK."""
        return self._timers.get(frame_id)

    def delivered_to(self) -> dict[str, int]:
        """CALLBACK frames sent per connection id."""
        return dict(Counter(d.connection_id for d in self.deliveries))

    @property
    def redeliveries(self) -> int:
        """Frames sent again because an earlier frame of the same message was not ACKed."""
        return sum(1 for d in self.deliveries if d.attempt > 1)

    def cancel_all(self) -> None:
        """Stop every timer (the simulator is stopping)."""
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()

    def _expire(self, msg_id: str, frame_id: str) -> None:
        self._timers[frame_id] = "expired"
        pending = self._pending.get(msg_id)
        if pending is None or pending.frame_id != frame_id:
            return
        if pending.attempts > self.max_redeliveries:
            del self._pending[msg_id]
            self.abandoned.append(msg_id)
            log.info("gave up on %s after %d deliveries", msg_id, pending.attempts)
        else:
            log.info("frame %s of %s not ACKed in %gs", frame_id, msg_id, self.ack_timeout_s)
            self.redeliver(msg_id)
        self._on_change()
