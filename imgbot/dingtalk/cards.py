"""DingTalk interactive cards: one card per request, created on acceptance and changed in place.

Two calls, in the shapes of DingTalk's own Python SDK (``dingtalk_stream/card_replier.py``):
``POST /v1.0/card/instances/createAndDeliver`` makes and sends the card in one call
(``cardTemplateId``, ``outTrackId``, ``cardData.cardParamMap`` of strings, ``openSpaceId``
``dtv1.card//IM_ROBOT.<staffId>`` with ``imRobotOpenDeliverModel`` one-to-one, or
``dtv1.card//IM_GROUP.<openConversationId>`` with ``imGroupOpenDeliverModel`` carrying
``robotCode`` in a group); ``PUT /v1.0/card/instances`` replaces its data by ``outTrackId``.

Why the whole-card update and not AI-card streaming (``PUT /v1.0/card/streaming``): imgbot changes
a card a few times as a whole (生成中…, then the picture or one sentence), never word by word.
Streaming would need a second permission (``Card.Streaming.Write``), an AI-card template with
``flowStatus``/``msgContent``, a finalising call (a card left open is closed by DingTalk only after
a timeout), and it counts against the paid streaming quota where "QPS 限流" floods are reported.
The whole-card update needs ``Card.Instance.Write`` alone and costs one call per change.

``outTrackId`` is derived from the app and the message id (``out_track_id``), so a job reclaimed
after a crash updates the card the user already sees. Updates of one card are at least
``min_gap`` seconds apart with one in flight; an update overtaken by a newer one while it waited
is dropped (the newest wins). A refusal (HTTP 403: missing permission or QPS limit; 429; an
unknown template or any other 4xx of the create call; 5xx past the retry policy; a delivery
DingTalk reports as failed) raises ``CardRefused`` and pauses the card API for ``cooldown``
seconds: its reason is logged once, and until then every call raises ``CardRefused`` at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from imgbot.dingtalk.tokens import AccessTokens
from imgbot.errors import ReplyError
from imgbot.models import ImageRequest
from imgbot.net import retry
from imgbot.net.http_session import LazySession
from imgbot.observe import Observer

log = logging.getLogger(__name__)
CREATE_PATH = "/v1.0/card/instances/createAndDeliver"
UPDATE_PATH = "/v1.0/card/instances"
_PACED_CARDS = 4096
"""Cards whose last update time is kept for pacing (the oldest are forgotten first)."""


class CardRefused(ReplyError):
    """DingTalk refused a card call, or the card API is paused after a refusal."""


def out_track_id(client_id: str, msg_id: str) -> str:
    """The card's ``outTrackId`` for a message to the app ``client_id``: the same for every
    attempt of its job."""
    digest = hashlib.sha256(f"{client_id}\n{msg_id}".encode()).hexdigest()
    return f"imgbot-{digest[:40]}"


def card_space(request: ImageRequest, robot_code: str) -> dict[str, Any] | None:
    """Where the card goes (``openSpaceId`` and its deliver model); None for a one-to-one chat
    whose sender has no staff id (the space is named by it)."""
    if request.is_group:
        deliver: dict[str, Any] = {"robotCode": robot_code}
        if request.mentioned_staff_ids:
            deliver["atUserIds"] = {staff: staff for staff in request.mentioned_staff_ids}
        return {
            "openSpaceId": f"dtv1.card//IM_GROUP.{request.conversation_id}",
            "imGroupOpenDeliverModel": deliver,
            "imGroupOpenSpaceModel": {"supportForward": True},
        }
    if not request.sender_staff_id:
        return None
    return {
        "openSpaceId": f"dtv1.card//IM_ROBOT.{request.sender_staff_id}",
        "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT"},
        "imRobotOpenSpaceModel": {"supportForward": True},
    }


@dataclass
class _Pace:
    """One card's pacing: its updates take turns, the newest wins."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last: float | None = None
    newest: int = 0


class CardClient:
    """Creates and updates the bot's cards through DingTalk's card API."""

    def __init__(
        self,
        *,
        client_id: str,
        openapi_endpoint: str,
        tokens: AccessTokens,
        template_id: str,
        timeout: float,
        attempts: int,
        cooldown: float,
        min_gap: float,
        observer: Observer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_id = client_id
        """The app: with the message id it names each card, and it is the robotCode of messages
        that carry none (an app robot's robotCode is its AppKey)."""
        self._openapi = openapi_endpoint.rstrip("/")
        self._tokens = tokens
        self._template_id = template_id
        self._policy = retry.RetryPolicy(attempts=attempts, timeout=timeout * attempts + 5)
        self._http = LazySession(timeout=aiohttp.ClientTimeout(total=timeout))
        self._cooldown = cooldown
        self._min_gap = min_gap
        self._observer = observer
        self._clock = clock
        self._paused_until: float | None = None
        self._paces: OrderedDict[str, _Pace] = OrderedDict()

    def __repr__(self) -> str:
        return f"CardClient(openapi={self._openapi!r}, template={self._template_id!r})"

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.aclose()

    def track_id(self, request: ImageRequest) -> str:
        """The ``outTrackId`` of ``request``'s card."""
        return out_track_id(self._client_id, request.msg_id)

    def usable(self, request: ImageRequest) -> bool:
        """True when a card can be tried for ``request``: the API is not paused, and the chat has
        a card space."""
        return not self._paused() and self._space(request) is not None

    async def create(self, request: ImageRequest, params: Mapping[str, str]) -> None:
        """Make and deliver ``request``'s card showing ``params``.

        Raises ``CardRefused`` (refused or paused), or ``ReplyError`` with ``maybe_delivered``
        when DingTalk did not answer (never repeated: a second card would be a duplicate).
        """
        space = self._space(request)
        if space is None:
            raise ReplyError("no card space: a one-to-one message without senderStaffId")
        track = self.track_id(request)
        body = {
            "cardTemplateId": self._template_id,
            "outTrackId": track,
            "cardData": {"cardParamMap": dict(params)},
            "callbackType": "STREAM",
            "userIdType": 1,
            **space,
        }
        pace = self._pace(track)
        async with pace.lock:
            answer = await self._call("POST", CREATE_PATH, body, create=True)
            pace.last = self._clock()
        results = _deliver_results(answer)
        if results is not None and not all(r.get("success") is True for r in results):
            reason = "; ".join(str(r.get("errorMsg", ""))[:100] for r in results) or "no result"
            raise self._refused(f"card not delivered: {reason}")

    async def update(
        self, request: ImageRequest, params: Mapping[str, str], *, last: bool = False
    ) -> bool:
        """Show ``params`` on ``request``'s card; False when a newer update overtook this one
        while it waited its turn (nothing sent). ``last`` forgets the card's pacing afterwards.

        Raises ``CardRefused`` (refused, paused, or no such card) or ``ReplyError``.
        """
        track = self.track_id(request)
        pace = self._pace(track)
        pace.newest += 1
        mine = pace.newest
        async with pace.lock:
            if mine != pace.newest:
                return False
            if pace.last is not None:
                wait = pace.last + self._min_gap - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            body = {"outTrackId": track, "cardData": {"cardParamMap": dict(params)}}
            try:
                await self._call("PUT", UPDATE_PATH, body, create=False)
            finally:
                pace.last = self._clock()
                if last:
                    self._paces.pop(track, None)
        return True

    def _space(self, request: ImageRequest) -> dict[str, Any] | None:
        return card_space(request, request.robot_code or self._client_id)

    def _pace(self, track: str) -> _Pace:
        pace = self._paces.get(track)
        if pace is None:
            pace = self._paces[track] = _Pace()
            while len(self._paces) > _PACED_CARDS:
                self._paces.popitem(last=False)
        else:
            self._paces.move_to_end(track)
        return pace

    def _paused(self) -> bool:
        if self._paused_until is None:
            return False
        if self._clock() < self._paused_until:
            return True
        self._paused_until = None
        log.info("card API pause over; trying cards again")
        return False

    def _refused(self, reason: str) -> CardRefused:
        """Pause the card API (the reason logged once) and return the error to raise."""
        self._paused_until = self._clock() + self._cooldown
        log.warning(
            "card API refused (%s); answering in Markdown, no card calls for %g s",
            reason,
            self._cooldown,
        )
        return CardRefused(f"card refused: {reason}")

    async def _call(
        self, method: str, path: str, body: dict[str, Any], *, create: bool
    ) -> dict[str, Any]:
        if self._paused():
            raise CardRefused("card API paused after a refusal")

        def worth_retrying(exc: BaseException) -> bool:
            if not retry.retryable(exc):
                return False
            # A create that may have arrived is not sent again: it would be a second card.
            return not (create and isinstance(exc, ReplyError) and exc.maybe_delivered)

        try:
            return await retry.call(
                lambda: self._once(method, path, body),
                policy=self._policy,
                retry_on=worth_retrying,
                what="card",
                observer=self._observer,
            )
        except CardRefused:
            raise
        except ReplyError as exc:
            # 5xx or unreachable past the retries: DingTalk's card service is not answering.
            if exc.retryable and not exc.maybe_delivered:
                raise self._refused(str(exc)) from None
            raise

    async def _once(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = await self._tokens.access_token()
        headers = {"x-acs-dingtalk-access-token": token}
        try:
            async with self._http().request(
                method, self._openapi + path, json=body, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientConnectorError, ConnectionRefusedError) as exc:
            raise ReplyError(
                f"card API unreachable: {type(exc).__name__}", retryable=True
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ReplyError(
                f"card API did not answer: {type(exc).__name__}",
                retryable=True,
                maybe_delivered=True,
            ) from None
        answer = _json(text)
        if status >= 500:
            raise ReplyError(f"card API answered HTTP {status}", retryable=True, errcode=status)
        if status == 401:
            self._tokens.forget()
            raise ReplyError("card API refused the access token (HTTP 401)", errcode=401)
        if status >= 400:
            reason = _reason(status, answer)
            if status in (403, 429) or path == CREATE_PATH:
                raise self._refused(reason)
            # The card itself is unknown (its creation failed): no reason to pause the others.
            raise CardRefused(f"card update refused: {reason}", errcode=status)
        return answer


def _json(text: str) -> dict[str, Any]:
    try:
        answer = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _reason(status: int, answer: dict[str, Any]) -> str:
    """A refusal in a few words: HTTP status, DingTalk's code, the permission it names."""
    code = str(answer.get("code", ""))[:80]
    detail = answer.get("accessdenieddetail")
    scopes = detail.get("requiredScopes") if isinstance(detail, dict) else None
    words = f"HTTP {status} {code}".strip()
    if isinstance(scopes, list) and scopes:
        words += " missing permission " + ", ".join(str(s)[:60] for s in scopes[:5])
    elif "QpsLimit" in code:
        words += " (QPS limit)"
    return words


def _deliver_results(answer: dict[str, Any]) -> list[dict[str, Any]] | None:
    """createAndDeliver's ``result.deliverResults``; None when the answer has none."""
    result = answer.get("result")
    results = result.get("deliverResults") if isinstance(result, dict) else None
    if not isinstance(results, list):
        return None
    return [r for r in results if isinstance(r, dict)]
