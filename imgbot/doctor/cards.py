"""Doctor's card check (REPLY_STYLE=card): does the app hold DingTalk's card permission?

It updates a card that does not exist (a fresh ``outTrackId``): nothing reaches any chat. DingTalk
checks the token's permissions before it looks for the card, so HTTP 403
``Forbidden.AccessDenied.AccessTokenPermissionDenied`` names the missing permission in
``accessdenieddetail.requiredScopes``; any other 4xx (the card is unknown) means the permission
is there. A 401, a 5xx or an unexpected 2xx is reported as a problem with its status. The
template (CARD_TEMPLATE_ID) and the robot send permission cannot be checked without sending a
card: the bot logs either refusal once and answers in Markdown meanwhile.
"""

from __future__ import annotations

import json

from imgbot.chat import bounded_json
from imgbot.config.settings import Settings
from imgbot.dingtalk.answers import TOKEN_HEADER
from imgbot.dingtalk.cards import UPDATE_PATH
from imgbot.doctor.check import Check, http_call
from imgbot.doctor.outside import access_token
from imgbot.objects.keys import new_token

NAME = "card permission"
FIX = "grant it to the app in DingTalk's developer console (权限管理), then publish the app"


def permission(settings: Settings) -> Check:
    """Update a card that does not exist and read whether DingTalk refused the permission."""
    token = access_token(settings)
    if token is None:
        return Check(NAME, False, "no access token to check with", "see the dingtalk check")
    body = {"outTrackId": f"imgbot-doctor-{new_token()}", "cardData": {"cardParamMap": {}}}
    try:
        status, _, answer = http_call(
            settings.dingtalk_openapi_endpoint.rstrip("/") + UPDATE_PATH,
            10,
            method="PUT",
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", TOKEN_HEADER: token},
        )
    except (OSError, ValueError) as exc:
        return Check(NAME, False, f"card API unreachable ({type(exc).__name__})", "check network")
    if status == 403:
        return _forbidden(answer)
    if status == 401 or status >= 500 or status < 400:
        # A refused token, a server error, or a 2xx for a card that does not exist: not known.
        what = _code(answer) or "no code"
        return Check(NAME, False, f"not known: the card API answered HTTP {status} ({what})", "")
    return Check(NAME, True, "the card API accepts the app's token (Card.Instance.Write)")


def _forbidden(answer: bytes) -> Check:
    """What an HTTP 403 says: the missing permission, the QPS limit, or another refusal."""
    scopes = _required_scopes(answer)
    if scopes:
        missing = ", ".join(scopes)
        return Check(NAME, False, f"the app lacks {missing} (REPLY_STYLE=card)", FIX)
    code = _code(answer)
    if "QpsLimit" in code:
        return Check(NAME, True, f"not known now: the app is over its QPS ({code})")
    return Check(NAME, False, f"the card API refused the app (HTTP 403 {code})".strip(), FIX)


def _document(answer: bytes) -> dict[str, object]:
    try:
        document = bounded_json.loads(answer)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _code(answer: bytes) -> str:
    """DingTalk's error code, printable characters only."""
    code = str(_document(answer).get("code", ""))[:80]
    return "".join(c for c in code if c.isprintable())


def _required_scopes(answer: bytes) -> list[str]:
    detail = _document(answer).get("accessdenieddetail")
    scopes = detail.get("requiredScopes") if isinstance(detail, dict) else None
    if not isinstance(scopes, list):
        return []
    return ["".join(c for c in str(s)[:60] if c.isprintable()) for s in scopes[:5]]
