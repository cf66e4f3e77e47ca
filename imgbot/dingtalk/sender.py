"""Sends replies to DingTalk: the session webhook first, the robot API when it cannot be used.

The SDK's ``reply_*`` helpers block the event loop, have no timeout and ignore ``errcode``; this
sender uses aiohttp with timeouts and bounded retries (5xx and network errors, never 4xx), reads
DingTalk's in-band ``errcode`` from HTTP 200 answers (answers read, and a refused token renewed
once, by the rules of ``dingtalk.answers``), and falls back to the robot send API
(``oToMessages/batchSend`` or ``groupMessages/send``) when the webhook has expired or refuses.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from imgbot.dingtalk.answers import (
    TokenRefused,
    errcode,
    exchange,
    redact,
    scalar,
    token_refused,
    with_token,
)
from imgbot.dingtalk.tokens import AccessTokens
from imgbot.errors import ReplyError
from imgbot.models import ImageRequest
from imgbot.net import retry
from imgbot.net.http_session import LazySession
from imgbot.observe import Observer

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 20_000
_WEBHOOK_MARGIN_MS = 30_000  # do not start a webhook call this close to its expiry


@dataclass(frozen=True, slots=True)
class Message:
    """One outgoing message: plain text, Markdown (``title`` + text), or a native image.

    A native image (``sampleImageMsg``) goes through the robot API only: a session webhook is
    not known to take one.
    """

    kind: Literal["text", "markdown", "image"]
    text: str
    """The text, the Markdown body, or the image's URL or media id (``photoURL``)."""
    title: str | None = None

    @classmethod
    def plain(cls, text: str) -> Message:
        """A text message."""
        return cls("text", text)

    @classmethod
    def markdown(cls, title: str, text: str) -> Message:
        """A Markdown message; ``title`` shows in notifications and the conversation list."""
        return cls("markdown", text, title)

    @classmethod
    def image(cls, photo: str) -> Message:
        """DingTalk's own image message, showing the picture at the URL ``photo``, or the one
        uploaded to DingTalk's media store as ``photo`` (a media id)."""
        return cls("image", photo)

    def webhook_body(self, at_user_ids: list[str]) -> dict[str, Any]:
        """The session-webhook JSON body (text and Markdown only)."""
        if self.kind == "image":
            raise ValueError("an image message goes through the robot API")
        body: dict[str, Any] = (
            {"msgtype": "markdown", "markdown": {"title": self.title, "text": self.text}}
            if self.kind == "markdown"
            else {"msgtype": "text", "text": {"content": self.text}}
        )
        if at_user_ids:
            body["at"] = {"atUserIds": at_user_ids, "isAtAll": False}
        return body

    def robot_fields(self) -> dict[str, str]:
        """``msgKey`` and ``msgParam`` (a JSON string) for the robot send APIs."""
        keys = {"text": "sampleText", "markdown": "sampleMarkdown", "image": "sampleImageMsg"}
        params: dict[str, str] = {
            "text": {"content": self.text},
            "markdown": {"title": self.title or "", "text": self.text},
            "image": {"photoURL": self.text},
        }[self.kind]
        return {"msgKey": keys[self.kind], "msgParam": json.dumps(params, ensure_ascii=False)}


class ReplySender:
    """Delivers messages for requests; one aiohttp session shared by all replies."""

    def __init__(
        self,
        *,
        client_id: str,
        openapi_endpoint: str,
        tokens: AccessTokens,
        timeout: float,
        attempts: int,
        observer: Observer,
    ) -> None:
        self._client_id = client_id
        self._openapi = openapi_endpoint.rstrip("/")
        self._tokens = tokens
        # Each attempt is bounded by its timeout; the waits between them by the policy's cap.
        self._policy = retry.RetryPolicy.per_attempt(timeout, attempts)
        self._http = LazySession(timeout=aiohttp.ClientTimeout(total=timeout))
        self._observer = observer

    def __repr__(self) -> str:
        return f"ReplySender(openapi={self._openapi!r}, client_id={self._client_id!r})"

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.aclose()

    async def send(self, request: ImageRequest, message: Message) -> str:
        """Deliver ``message``; return the channel used ("webhook" or "robot")."""
        if message.kind == "image":
            await self._with_retries(self._post_robot, request, message, once_sent=True)
            return "robot"
        body = message.webhook_body(request.mentioned_staff_ids)
        if len(json.dumps(body, ensure_ascii=False).encode()) > MAX_BODY_BYTES:
            raise ReplyError("reply body over 20000 bytes")
        now_ms = time.time() * 1000
        webhook = request.session_webhook
        if webhook and not self._trusted_webhook(webhook):
            # The payload names the URL we POST to: only DingTalk's own hosts get the reply.
            log.warning(
                "msg %s: session webhook on an unexpected host %s; using the robot API",
                request.msg_id,
                _netloc(webhook)[:100],
            )
            webhook = ""
        if webhook and now_ms < request.webhook_expires_at_ms - _WEBHOOK_MARGIN_MS:
            try:
                await self._with_retries(self._post_webhook, webhook, body)
            except ReplyError as exc:
                if exc.errcode is None:
                    raise
                log.warning(
                    "msg %s: webhook answered errcode %s; using the robot API",
                    request.msg_id,
                    exc.errcode,
                )
            else:
                return "webhook"
        elif webhook:
            log.info("msg %s: session webhook expired; using the robot API", request.msg_id)
        await self._with_retries(self._post_robot, request, message)
        return "robot"

    def _trusted_webhook(self, url: str) -> bool:
        """An https URL on a DingTalk host, or on the configured OpenAPI origin (the simulator)."""
        try:
            parts, openapi = urlsplit(url), urlsplit(self._openapi)
            host = (parts.hostname or "").lower()
        except ValueError:  # e.g. an unclosed "[" of an IPv6 host
            return False
        if (parts.scheme, parts.netloc) == (openapi.scheme, openapi.netloc):
            return True
        return parts.scheme == "https" and (
            host == "dingtalk.com" or host.endswith(".dingtalk.com")
        )

    async def _with_retries(self, call: Any, *args: Any, once_sent: bool = False) -> None:
        await retry.call(
            lambda: call(*args),
            policy=self._policy,
            retry_on=retry.retryable_unsent if once_sent else retry.retryable,
            what="reply",
            observer=self._observer,
        )

    async def _post_webhook(self, url: str, body: dict[str, Any]) -> None:
        answer = await self._post_json(url, body, token=None, what="webhook")
        code = errcode(answer)
        if code != 0:  # a non-numeric errcode (-1) is still a refusal
            errmsg = redact(scalar(answer.get("errmsg"), 1000), "")
            raise ReplyError(f"webhook errcode {code}: {errmsg}", errcode=code)

    async def _post_robot(self, request: ImageRequest, message: Message) -> None:
        fields = {"robotCode": request.robot_code or self._client_id, **message.robot_fields()}
        if request.is_group:
            path = "/v1.0/robot/groupMessages/send"
            fields["openConversationId"] = request.conversation_id
        else:
            if not request.sender_staff_id:
                raise ReplyError("cannot use the robot API: the message has no senderStaffId")
            path = "/v1.0/robot/oToMessages/batchSend"
            fields["userIds"] = [request.sender_staff_id]  # type: ignore[assignment]
        url = self._openapi + path
        await with_token(
            self._tokens,
            lambda token: self._post_json(url, fields, token=token, what="robot API"),
        )

    async def _post_json(
        self, url: str, body: dict[str, Any], *, token: str | None, what: str
    ) -> dict[str, Any]:
        # Sent without an answer, a call may have arrived: retried for text and Markdown (a repeat
        # is better than silence), never for a native image, whose repeat is another picture.
        answer = await exchange(self._http(), "POST", url, json=body, token=token, what=what)
        status = answer.status
        if status >= 500:
            raise ReplyError(f"{what} answered HTTP {status}", retryable=True)
        if token is not None and token_refused(answer):
            raise TokenRefused(f"{what} refused the access token (HTTP {status})", errcode=401)
        if status >= 400:
            said = answer.fields.get("message") or answer.fields.get("code")
            detail = redact(scalar(said, 1000), token or "")
            raise ReplyError(f"{what} answered HTTP {status}: {detail}", errcode=status)
        if answer.document is None:
            raise ReplyError(f"{what} answered {answer.problem}", retryable=True)
        return answer.document


def _netloc(url: str) -> str:
    """``url``'s host and port for a log line; "?" when it cannot be parsed."""
    try:
        return urlsplit(url).netloc
    except ValueError:
        return "?"
