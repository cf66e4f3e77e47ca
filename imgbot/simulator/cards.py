"""The simulated interactive-card API: create, deliver, create-and-deliver and update.

Bodies as DingTalk's own SDK sends them (``dingtalk_stream/card_replier.py``): ``cardTemplateId``,
``outTrackId``, ``cardData.cardParamMap`` (string values only), ``openSpaceId``
``dtv1.card//IM_ROBOT.<userId>`` with ``imRobotOpenDeliverModel``, or
``dtv1.card//IM_GROUP.<openConversationId>`` with ``imGroupOpenDeliverModel.robotCode``; header
``x-acs-dingtalk-access-token``. Every card is recorded with each version of its data.

Switches (``refusal``) make every card call answer as DingTalk does when the app lacks
``Card.Instance.Write`` (HTTP 403 ``Forbidden.AccessDenied.AccessTokenPermissionDenied`` naming
the scope in ``accessdenieddetail.requiredScopes``), when the app is over its QPS (HTTP 403
``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``), or with HTTP 500. ``templates``, when set,
lists the template ids that exist; a card of another template is refused with HTTP 400. An
update of an ``outTrackId`` no card has, and a create of one a card has, are refused with HTTP 400
as well (this simulator's codes; DingTalk's are not confirmed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from imgbot.simulator.models import JSONDict, error_body, parse_json_object

log = logging.getLogger(__name__)
CardRefusal = Literal["permission", "qps", "server"]
ROBOT_SPACE = "dtv1.card//IM_ROBOT."
GROUP_SPACE = "dtv1.card//IM_GROUP."


@dataclass
class Card:
    """One card instance: where it was delivered and each version of its data, oldest first."""

    out_track_id: str
    template_id: str
    versions: list[dict[str, str]]
    conversation_id: str = ""
    """The conversation it was delivered to; "" while only created."""
    space_id: str = ""
    at_user_ids: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, str]:
        """What the card shows now."""
        return self.versions[-1]


@dataclass(frozen=True)
class CardCall:
    """One call of the card API: its path, method, HTTP status and when (monotonic seconds)."""

    method: str
    path: str
    status: int
    at: float


class CardApi:
    """Accepts the bot's cards and records them."""

    def __init__(
        self,
        robot_code: str,
        token_valid: Callable[[str], bool],
        conversation_of_user: Callable[[str], str],
        on_change: Callable[[Card], None],
    ) -> None:
        self._robot_code = robot_code
        self._token_valid = token_valid
        self._conversation_of_user = conversation_of_user
        self._on_change = on_change
        self.cards: dict[str, Card] = {}
        self.calls: list[CardCall] = []
        self.refusal: CardRefusal | None = None
        self.templates: set[str] | None = None

    def routes(self) -> list[web.RouteDef]:
        """The card API's HTTP routes."""
        return [
            web.post("/v1.0/card/instances", self.create),
            web.post("/v1.0/card/instances/deliver", self.deliver),
            web.post("/v1.0/card/instances/createAndDeliver", self.create_and_deliver),
            web.put("/v1.0/card/instances", self.update),
        ]

    async def create(self, request: web.Request) -> web.Response:
        """`POST /v1.0/card/instances`: make a card (not shown anywhere until delivered)."""
        body = await self._checked(request)
        if isinstance(body, web.Response):
            return body
        card = self._new_card(body)
        if isinstance(card, web.Response):
            return self._answer(request, card)
        self.cards[card.out_track_id] = card
        return self._answer(
            request, web.json_response({"success": True, "result": card.out_track_id})
        )

    async def deliver(self, request: web.Request) -> web.Response:
        """`POST /v1.0/card/instances/deliver`: show a created card in a conversation."""
        body = await self._checked(request)
        if isinstance(body, web.Response):
            return body
        card = self.cards.get(str(body.get("outTrackId", "")))
        if card is None:
            return self._answer(request, _error(400, "param.outTrackIdNotExist", "卡片不存在"))
        delivered = self._deliver(card, body)
        return self._answer(request, web.json_response({"success": True, "result": [delivered]}))

    async def create_and_deliver(self, request: web.Request) -> web.Response:
        """`POST /v1.0/card/instances/createAndDeliver`: make a card and show it, in one call."""
        body = await self._checked(request)
        if isinstance(body, web.Response):
            return body
        card = self._new_card(body)
        if isinstance(card, web.Response):
            return self._answer(request, card)
        space = self._space(body)
        if isinstance(space, web.Response):
            return self._answer(request, space)
        self.cards[card.out_track_id] = card
        delivered = self._deliver(card, body)
        result = {"outTrackId": card.out_track_id, "deliverResults": [delivered]}
        return self._answer(request, web.json_response({"success": True, "result": result}))

    async def update(self, request: web.Request) -> web.Response:
        """`PUT /v1.0/card/instances`: replace a card's data, by ``outTrackId``."""
        body = await self._checked(request)
        if isinstance(body, web.Response):
            return body
        card = self.cards.get(str(body.get("outTrackId", "")))
        if card is None:
            return self._answer(request, _error(400, "param.outTrackIdNotExist", "卡片不存在"))
        params = _param_map(body)
        if params is None:
            return self._answer(request, _bad_params())
        card.versions.append(params)
        log.info("card %s updated (%d versions)", card.out_track_id, len(card.versions))
        self._on_change(card)
        return self._answer(request, web.json_response({"success": True, "result": True}))

    # ---- helpers ---------------------------------------------------------------------------

    def _answer(self, request: web.Request, response: web.Response) -> web.Response:
        self.calls.append(CardCall(request.method, request.path, response.status, time.monotonic()))
        return response

    async def _checked(self, request: web.Request) -> JSONDict | web.Response:
        """The call's JSON body, or the refusal DingTalk would answer it with."""
        if not self._token_valid(request.headers.get("x-acs-dingtalk-access-token", "")):
            return self._answer(
                request, _error(401, "InvalidAuthentication", "不合法的access_token")
            )
        if self.refusal is not None:
            return self._answer(request, _refusal(self.refusal))
        body = parse_json_object(await request.read())
        if body is None:
            return self._answer(request, _error(400, "invalidParameter", "参数不合法"))
        return body

    def _new_card(self, body: JSONDict) -> Card | web.Response:
        template, track = body.get("cardTemplateId"), body.get("outTrackId")
        if not isinstance(template, str) or not template:
            return _error(400, "param.cardTemplateIdEmpty", "cardTemplateId不能为空")
        if self.templates is not None and template not in self.templates:
            return _error(400, "param.templateNotExist", "卡片模板不存在")
        if not isinstance(track, str) or not track or len(track) > 128:
            return _error(400, "param.outTrackIdInvalid", "outTrackId不合法")
        if track in self.cards:
            # DingTalk's status and code for a taken outTrackId are not confirmed: this is the
            # simulator's guess (HTTP 400, like its other parameter errors).
            return _error(400, "param.outTrackIdExist", "outTrackId已存在")
        params = _param_map(body)
        if params is None:
            return _bad_params()
        return Card(track, template, [params])

    def _space(self, body: JSONDict) -> tuple[str, str] | web.Response:
        """The conversation and space id named by ``openSpaceId`` and its deliver model."""
        space = body.get("openSpaceId")
        space = space if isinstance(space, str) else ""
        if space.startswith(ROBOT_SPACE) and len(space) > len(ROBOT_SPACE):
            model = body.get("imRobotOpenDeliverModel")
            if not isinstance(model, dict) or model.get("spaceType") != "IM_ROBOT":
                return _error(400, "param.deliverModelInvalid", "缺少imRobotOpenDeliverModel")
            user = space.removeprefix(ROBOT_SPACE)
            return self._conversation_of_user(user), user
        if space.startswith(GROUP_SPACE) and len(space) > len(GROUP_SPACE):
            model = body.get("imGroupOpenDeliverModel")
            if not isinstance(model, dict) or model.get("robotCode") != self._robot_code:
                return _error(
                    400, "param.robotCodeInvalid", "imGroupOpenDeliverModel.robotCode不合法"
                )
            group = space.removeprefix(GROUP_SPACE)
            return group, group
        return _error(400, "param.openSpaceIdInvalid", "openSpaceId不合法")

    def _deliver(self, card: Card, body: JSONDict) -> JSONDict:
        space = self._space(body)
        if isinstance(space, web.Response):
            return {
                "spaceType": "",
                "spaceId": "",
                "success": False,
                "errorMsg": "openSpaceId不合法",
            }
        card.conversation_id, card.space_id = space
        model = body.get("imGroupOpenDeliverModel")
        at = model.get("atUserIds") if isinstance(model, dict) else None
        if isinstance(at, dict):
            card.at_user_ids = {str(k): str(v) for k, v in at.items()}
        kind = "IM_GROUP" if str(body.get("openSpaceId")).startswith(GROUP_SPACE) else "IM_ROBOT"
        log.info("card %s delivered to %s", card.out_track_id, card.conversation_id)
        self._on_change(card)
        return {"spaceType": kind, "spaceId": card.space_id, "success": True, "errorMsg": ""}


def _param_map(body: JSONDict) -> dict[str, str] | None:
    """``cardData.cardParamMap`` when it is an object of strings."""
    data = body.get("cardData")
    params = data.get("cardParamMap") if isinstance(data, dict) else None
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        return None
    return dict(params)


def _bad_params() -> web.Response:
    return _error(400, "param.cardParamMapInvalid", "cardParamMap的值必须是字符串")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


def _refusal(kind: CardRefusal) -> web.Response:
    if kind == "permission":
        body = error_body(
            "Forbidden.AccessDenied.AccessTokenPermissionDenied",
            "没有调用该接口的权限，接口权限申请参考：https://open.dingtalk.com/document/orgapp-server/add-api-permission",
        )
        body["accessdenieddetail"] = {"requiredScopes": ["Card.Instance.Write"]}
        return web.json_response(body, status=403)
    if kind == "qps":
        code = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
        return web.json_response(error_body(code, "请求过于频繁，QPS 限流"), status=403)
    return web.json_response(error_body("ServiceUnavailable", "系统繁忙"), status=500)
