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
after a crash updates the card the user already sees. Calls of one card are paced by
``card_pacing`` (``min_gap`` apart, one in flight, the newest update wins). Answers are read by
the rules of ``dingtalk.answers`` (a refused token renewed once); every text DingTalk sends back
is logged with the access token cut out.

A create answered 5xx may still have made the card: it is retried, and a retry told the
``outTrackId`` already exists counts as made. A create that may have arrived (no answer) is never
sent again. An answer that does not say the card was made and delivered (``success``/``result``
false, no JSON object, no or a failed ``deliverResults``) and any other 4xx raise ``CardRefused``
for that request alone. HTTP 403 (missing permission or QPS limit), 429, an unknown template and
5xx past the retry policy also pause the card API for ``cooldown`` seconds: the reason is logged
when the pause starts, and until it ends every call raises ``CardRefused`` at once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from imgbot.dingtalk.answers import Answer, TokenRefused, exchange, redact, scalar, with_token
from imgbot.dingtalk.card_pacing import CardPacing
from imgbot.dingtalk.tokens import AccessTokens
from imgbot.errors import ReplyError
from imgbot.models import ImageRequest
from imgbot.net import retry
from imgbot.net.http_session import LazySession
from imgbot.observe import Observer

log = logging.getLogger(__name__)
CREATE_PATH = "/v1.0/card/instances/createAndDeliver"
UPDATE_PATH = "/v1.0/card/instances"


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
            deliver["atUserIds"] = request.mentioned_names
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
        self._policy = retry.RetryPolicy.per_attempt(timeout, attempts)
        self._http = LazySession(timeout=aiohttp.ClientTimeout(total=timeout))
        self._cooldown = cooldown
        self._pacing = CardPacing(min_gap, clock)
        self._observer = observer
        self._clock = clock
        self._paused_until: float | None = None

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

        Raises ``CardRefused`` (refused, not delivered, or paused), or ``ReplyError`` with
        ``maybe_delivered`` when DingTalk did not answer (never repeated: a second card would be
        a duplicate).
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
        async with self._pacing.first(track):
            await self._call("POST", CREATE_PATH, body)

    async def update(
        self, request: ImageRequest, params: Mapping[str, str], *, last: bool = False
    ) -> bool:
        """Show ``params`` on ``request``'s card; False when a newer update overtook this one
        while it waited its turn (nothing sent). ``last`` forgets the card's pacing afterwards.

        Raises ``CardRefused`` (refused, paused, or no such card) or ``ReplyError``.
        """
        track = self.track_id(request)
        async with self._pacing.turn(track, last=last) as mine:
            if not mine:
                return False
            body = {"outTrackId": track, "cardData": {"cardParamMap": dict(params)}}
            await self._call("PUT", UPDATE_PATH, body)
        return True

    def _space(self, request: ImageRequest) -> dict[str, Any] | None:
        return card_space(request, request.robot_code or self._client_id)

    def _paused(self) -> bool:
        if self._paused_until is None:
            return False
        if self._clock() < self._paused_until:
            return True
        self._paused_until = None
        log.info("card API pause over; trying cards again")
        return False

    def _refused(self, reason: str, *, pause: bool, errcode: int | None = None) -> CardRefused:
        """The error to raise for a refusal, logged; with ``pause`` the card API pauses too,
        unless it already is (concurrent refusals start one pause and log it once)."""
        if not pause:
            log.warning("card call refused (%s); answering this request in Markdown", reason)
        elif not self._paused():
            self._paused_until = self._clock() + self._cooldown
            log.warning(
                "card API refused (%s); answering in Markdown, no card calls for %g s",
                reason,
                self._cooldown,
            )
        return CardRefused(f"card refused: {reason}", errcode=errcode)

    async def _call(self, method: str, path: str, body: dict[str, Any]) -> None:
        if self._paused():
            raise CardRefused("card API paused after a refusal")
        create = path == CREATE_PATH
        tries = 0

        async def once() -> None:
            nonlocal tries
            tries += 1
            again = create and tries > 1
            await with_token(
                self._tokens, lambda token: self._once(method, path, body, token, again=again)
            )

        try:
            await retry.call(
                once,
                policy=self._policy,
                # A create that may have arrived is not sent again: it would be a second card.
                retry_on=retry.retryable_unsent if create else retry.retryable,
                what="card",
                observer=self._observer,
            )
        except CardRefused:
            raise
        except ReplyError as exc:
            # 5xx or unreachable past the retries: DingTalk's card service is not answering.
            if exc.retryable and not exc.maybe_delivered:
                raise self._refused(str(exc), pause=True, errcode=exc.errcode) from None
            raise

    async def _once(
        self, method: str, path: str, body: dict[str, Any], token: str, *, again: bool
    ) -> None:
        """One call; ``again`` when it repeats a create whose earlier try got no clear answer."""
        answer = await exchange(
            self._http(), method, self._openapi + path, json=body, token=token, what="card API"
        )
        status, fields = answer.status, answer.fields
        if status >= 500:
            raise ReplyError(f"card API answered HTTP {status}", retryable=True, errcode=status)
        if status == 401:
            raise TokenRefused("card API refused the access token (HTTP 401)", errcode=401)
        if status >= 400:
            if again and _already_made(fields):
                log.info("card %s: made by the earlier unanswered try", body.get("outTrackId"))
                return
            pause = status in (403, 429) or _unknown_template(fields)
            raise self._refused(_reason(status, fields, token), pause=pause, errcode=status)
        problem = _not_done(answer, create=path == CREATE_PATH)
        if problem:
            raise self._refused(redact(f"HTTP {status} {problem}", token), pause=False)


def _reason(status: int, fields: dict[str, Any], token: str) -> str:
    """A refusal in a few words: HTTP status, DingTalk's code, the permission it names; the
    access token cut out."""
    code = scalar(fields.get("code"), 80)
    detail = fields.get("accessdenieddetail")
    scopes = detail.get("requiredScopes") if isinstance(detail, dict) else None
    words = f"HTTP {status} {code}".strip()
    if isinstance(scopes, list) and scopes:
        words += " missing permission " + ", ".join(scalar(s, 60) for s in scopes[:5])
    elif "QpsLimit" in code:
        words += " (QPS limit)"
    return redact(words, token, 400)


def _already_made(fields: dict[str, Any]) -> bool:
    """DingTalk says the ``outTrackId`` is taken (the simulator's code; DingTalk's own is not
    confirmed, so the message is read as well)."""
    code = scalar(fields.get("code")).lower()
    return "outtrackidexist" in code or "已存在" in scalar(fields.get("message"))


def _unknown_template(fields: dict[str, Any]) -> bool:
    """DingTalk says the card template does not exist: every card would be refused."""
    return "template" in scalar(fields.get("code")).lower()


def _not_done(answer: Answer, *, create: bool) -> str:
    """Why a 2xx answer does not say the call worked ("" when it does): no JSON object,
    ``success`` or ``result`` false, and for a create no successful ``deliverResults``."""
    document = answer.document
    if document is None:
        return f"answer {answer.problem}"
    if document.get("success") is False or document.get("result") is False:
        return f"success false {scalar(document.get('code'), 80)}".strip()
    if not create:
        return ""
    result = document.get("result")
    results = result.get("deliverResults") if isinstance(result, dict) else None
    if not isinstance(results, list) or not results:
        return "card not delivered: no deliverResults"
    failed = [r for r in results if not isinstance(r, dict) or r.get("success") is not True]
    if failed:
        said = "; ".join(scalar(r.get("errorMsg"), 100) for r in failed if isinstance(r, dict))
        return f"card not delivered: {said or 'no reason given'}"
    return ""
