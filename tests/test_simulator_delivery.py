"""The simulator delivers like DingTalk with several connections: one random connection per push,
redelivery of a CALLBACK not ACKed in time (same msgId, new frame id), bounded, waiting for a
connection when none is live. Driven by bare websocket clients written here, and by the real bot.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import running_bot
from tests.polling import wait_until

CREDENTIALS = {"clientId": "sim-client-id", "clientSecret": "sim-client-secret"}


class StreamClient:
    """A bare Stream client: open-connection call, websocket, records CALLBACKs, ACKs or not."""

    def __init__(self, http: aiohttp.ClientSession, sim: DingTalkSimulator) -> None:
        self._http, self._sim = http, sim
        self.frames: list[dict[str, Any]] = []
        # Which CALLBACKs to ACK, by the chatbot message's msgId; every one by default.
        self.acks: Callable[[str], bool] = lambda _msg_id: True
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        url = f"{self._sim.base_url}/v1.0/gateway/connections/open"
        async with self._http.post(url, json=CREDENTIALS) as answer:
            assert answer.status == 200
            opened = await answer.json()
        self._ws = await self._http.ws_connect(f"{opened['endpoint']}?ticket={opened['ticket']}")
        self._reader = asyncio.create_task(self._read(self._ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame["type"] != "CALLBACK":
                continue
            self.frames.append(frame)
            if self.acks(self.msg_id(frame)):
                ack = {"code": 200, "headers": {"messageId": frame["headers"]["messageId"]}}
                await ws.send_str(json.dumps({**ack, "message": "OK", "data": "{}"}))

    @staticmethod
    def msg_id(frame: dict[str, Any]) -> str:
        return str(json.loads(frame["data"])["msgId"])

    def frames_of(self, msg_id: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if self.msg_id(f) == msg_id]

    def connection_ids(self) -> set[str]:
        return {f["headers"]["connectionId"] for f in self.frames}

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader


async def connect(
    http: aiohttp.ClientSession, sim: DingTalkSimulator, n: int
) -> list[StreamClient]:
    """Open ``n`` more clients one after another, so the simulator lists them in this order."""
    clients = []
    for _ in range(n):
        client = StreamClient(http, sim)
        wanted = sim.connected_count + 1
        await client.open()
        clients.append(client)
        await sim.wait_until(lambda wanted=wanted: sim.connected_count == wanted)  # type: ignore[misc]
    return clients


async def pushes_to_three(seed: int, http: aiohttp.ClientSession) -> list[int]:
    """Push 60 messages to three ACKing clients; return which client (index) got each one."""
    async with DingTalkSimulator(seed=seed) as sim:
        clients = await connect(http, sim, 3)
        sent = [await sim.send_text(f"第{i}条", msg_id=f"msg-{i}") for i in range(60)]
        await sim.wait_until(lambda: len(sim.acks) == 60)
        by_connection = sim.deliveries_by_connection()
        got = [len(c.frames) for c in clients]
        assert all(0 < n < 60 for n in got), got
        assert sum(got) == 60 and sim.redeliveries == 0
        for client in clients:
            [conn_id] = client.connection_ids()
            assert by_connection[conn_id] == len(client.frames)
        received = Counter(StreamClient.msg_id(f) for c in clients for f in c.frames)
        assert received == Counter(str(m["msgId"]) for m in sent)
        assert {sim.ack_timer(d.frame_id) for d in sim.deliveries} == {"cancelled"}
        order = [d.connection_id for d in sim.deliveries]
        ids = [next(iter(c.connection_ids())) for c in clients]
        for client in clients:
            await client.close()
        return [ids.index(conn_id) for conn_id in order]


async def test_each_push_goes_to_one_random_connection(http: aiohttp.ClientSession) -> None:
    """60 pushes over three connections: each got some, none all, each push once; seed repeats."""
    first = await pushes_to_three(7, http)
    assert await pushes_to_three(7, http) == first
    assert first != sorted(first)  # not one connection after another
    # Not round-robin either: some connection gets two pushes in a row.
    assert any(a == b for a, b in itertools.pairwise(first))


def ids(frames: list[dict[str, Any]]) -> list[str]:
    return [f["headers"]["messageId"] for f in frames]


async def test_unacked_frame_is_redelivered_to_a_live_connection(
    http: aiohttp.ClientSession,
) -> None:
    """A CALLBACK not ACKed in time comes again (same msgId, new frame id) until one ACKs it."""
    async with DingTalkSimulator(ack_timeout_s=0.3, max_redeliveries=20, seed=5) as sim:
        [silent] = await connect(http, sim, 1)
        silent.acks = lambda _msg_id: False
        started = asyncio.get_running_loop().time()
        first_id = await sim.send_message({"msgId": "msg-lost", "text": {"content": "猫"}})
        await wait_until(lambda: len(silent.frames) == 1)
        [acking] = await connect(http, sim, 1)
        ack = await sim.wait_for_ack("msg-lost")
        assert asyncio.get_running_loop().time() - started >= 0.3
        # Settled: no frame comes after the ACK; wait until the clients have read every one.
        await wait_until(lambda: len(silent.frames) + len(acking.frames) == len(sim.deliveries))
        frames = silent.frames_of("msg-lost") + acking.frames_of("msg-lost")
        assert ids(frames)[0] == first_id and len(set(ids(frames))) == len(frames)
        assert all(json.loads(f["data"])["text"]["content"] == "猫" for f in frames)
        assert ack["headers"]["messageId"] in ids(acking.frames_of("msg-lost"))
        assert sim.ack_timer(first_id) == "expired"
        assert sim.ack_timer(ack["headers"]["messageId"]) == "cancelled"
        assert sim.redeliveries == len(frames) - 1 >= 1
        assert [d.attempt for d in sim.deliveries] == list(range(1, len(frames) + 1))
        for client in (silent, acking):
            await client.close()


async def test_redelivery_waits_for_a_connection(http: aiohttp.ClientSession) -> None:
    """A frame whose connection closed unACKed goes to the next connection that opens."""
    async with DingTalkSimulator(ack_timeout_s=0.2) as sim:
        [gone] = await connect(http, sim, 1)
        gone.acks = lambda _msg_id: False
        first_id = await sim.send_message({"msgId": "msg-orphan", "text": {"content": "猫"}})
        await wait_until(lambda: len(gone.frames) == 1)
        await gone.close()
        await sim.wait_until(lambda: sim.connected_count == 0)
        await sim.wait_until(lambda: sim.ack_timer(first_id) == "expired")
        assert sim.redeliveries == 0  # waiting for a connection
        [late] = await connect(http, sim, 1)
        ack = await sim.wait_for_ack("msg-orphan")
        [frame] = late.frames_of("msg-orphan")
        assert ack["headers"]["messageId"] == frame["headers"]["messageId"] != first_id
        assert sim.redeliveries == 1
        await late.close()


async def test_redeliveries_are_bounded(http: aiohttp.ClientSession) -> None:
    """A message never ACKed is sent 1 + max_redeliveries times, then given up."""
    async with DingTalkSimulator(ack_timeout_s=0.1, max_redeliveries=2) as sim:
        [silent] = await connect(http, sim, 1)
        silent.acks = lambda _msg_id: False
        await sim.send_message({"msgId": "msg-never", "text": {"content": "猫"}})
        await sim.wait_until(lambda: sim.abandoned == ["msg-never"])
        await wait_until(lambda: len(silent.frames) == 3)
        assert len(set(ids(silent.frames))) == 3 and sim.redeliveries == 2
        assert {sim.ack_timer(i) for i in ids(silent.frames)} == {"expired"}
        await silent.close()


async def test_ack_in_time_means_no_redelivery(http: aiohttp.ClientSession) -> None:
    """An ACKed frame's timer is cancelled: a later unACKed frame is redelivered, it is not."""
    async with DingTalkSimulator(ack_timeout_s=0.3) as sim:
        [client] = await connect(http, sim, 1)
        client.acks = lambda msg_id: msg_id == "msg-ack"
        acked_id = await sim.send_message({"msgId": "msg-ack", "text": {"content": "猫"}})
        await sim.wait_for_ack(acked_id)
        late_id = await sim.send_message({"msgId": "msg-late", "text": {"content": "狗"}})
        # The late frame's timer started after the ACKed one's would have: once it has fired,
        # the ACKed frame's would have fired too.
        await sim.wait_until(lambda: sim.redeliveries == 1)
        assert sim.ack_timer(late_id) == "expired"
        assert sim.ack_timer(acked_id) == "cancelled"
        assert [d.msg_id for d in sim.deliveries].count("msg-ack") == 1
        await client.close()


@pytest.mark.minio
@pytest.mark.e2e
async def test_the_bot_acks_before_the_timeout(s3_env: dict[str, str]) -> None:
    """The real bot ACKs a push at once: with a 1 s ACK timeout its frame's timer is cancelled."""
    async with DingTalkSimulator(ack_timeout_s=1.0) as sim, running_bot(sim):
        sent = await sim.send_text("帮我画一只可爱的小猫")
        await sim.wait_for_ack(str(sent["msgId"]))
        [delivery] = sim.deliveries
        assert sim.ack_timer(delivery.frame_id) == "cancelled"
        await sim.wait_for_replies(2, timeout=30)
        assert sim.redeliveries == 0 and len(sim.deliveries) == 1
