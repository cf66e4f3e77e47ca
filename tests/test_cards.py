"""REPLY_STYLE=card through the real SDK and the simulator's card API: one card per request that
says 生成中… and turns into the picture or a sentence; refusals answered in Markdown."""

from __future__ import annotations

import asyncio
import itertools
import logging
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from imgbot.delivery import texts as chat_texts
from imgbot.dingtalk.cards import CREATE_PATH, UPDATE_PATH, CardClient
from imgbot.dingtalk.tokens import AccessTokens
from imgbot.models import ImageRequest
from imgbot.observe import NoObserver
from imgbot.simulator import DingTalkSimulator
from imgbot.simulator.cards import CardRefusal
from tests.bot_harness import IMAGE_RE, LINK_RE, image_replies, running_bot
from tests.bot_process import bot_process
from tests.conftest import CliRunner, set_up_bucket
from tests.fake_providers import FakeProviders, FakeProvidersThread
from tests.polling import wait_until

pytestmark = [pytest.mark.minio, pytest.mark.e2e]
CAT = "帮我画一只可爱的小猫"
TEMPLATE = "imgbot-test-card.schema"
CARD = {"reply_style": "card", "card_template_id": TEMPLATE}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def card_calls(simulator: DingTalkSimulator) -> list[tuple[str, str, int]]:
    """The card API calls so far: method, path, HTTP status."""
    return [(c.method, c.path, c.status) for c in simulator.card_calls]


def http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return int(answer.status)


async def finished_card(simulator: DingTalkSimulator, versions: int = 2) -> Any:
    """The only card, once it has ``versions`` versions."""
    await simulator.wait_until(
        lambda: any(len(c.versions) >= versions for c in simulator.cards.values()), timeout=30
    )
    (card,) = simulator.cards.values()
    return card


async def test_card_says_drawing_then_shows_the_picture(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """One card is created saying 生成中… and updated once to the picture; no other message."""
    async with running_bot(simulator, **CARD):
        await simulator.send_text(CAT)
        card = await finished_card(simulator)
    assert card.template_id == TEMPLATE and card.space_id == "user001"
    drawing, done = card.versions
    assert drawing["status"] == "drawing" and drawing["title"] == chat_texts.CARD_DRAWING
    assert drawing["image"] == "" and CAT in drawing["markdown"]
    assert done["status"] == "done" and done["title"] == "图片已生成"
    original = LINK_RE.search(done["markdown"])
    assert original and original.group(1) == done["original"] and done["expiry"]
    for url in (done["image"], done["original"]):
        assert await asyncio.to_thread(http_status, url) == 200
    assert card_calls(simulator) == [("POST", CREATE_PATH, 200), ("PUT", UPDATE_PATH, 200)]
    assert simulator.replies == []


async def test_failure_sentence_on_the_card(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders
) -> None:
    """A refused prompt turns the card into the one failure sentence."""
    providers.script.outcome = "moderated"
    async with running_bot(simulator, **CARD, **providers.settings_for("dashscope")):
        await simulator.send_text("一张不合适的图")
        card = await finished_card(simulator)
    assert card.params["status"] == "failed" and card.params["title"] == chat_texts.CARD_FAILED
    assert card.params["markdown"].endswith(chat_texts.MODERATED) and card.params["image"] == ""
    assert simulator.replies == []


async def test_group_card_mentions_the_sender(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """In a group the card goes to the group, @-mentions the sender by staff id with their nick
    (as DingTalk's own card replier does), and names them by that nick in its text."""
    async with running_bot(simulator, **CARD):
        sent = await simulator.send_text(
            CAT, group=True, sender_staff_id="staff42", sender_nick="小王"
        )
        card = await finished_card(simulator)
    assert card.conversation_id == sent["conversationId"]
    assert card.at_user_ids == {"staff42": "小王"}
    assert all(v["markdown"].startswith("@小王\n") for v in card.versions)
    assert simulator.replies == []


async def test_waiting_card_shows_its_place_then_drawing(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders
) -> None:
    """A request waiting for the one slot gets a card saying 排队中… with its place, which says
    生成中… once its job starts and then shows the picture."""
    providers.script.outcome = "hang"
    settings = {**CARD, **providers.settings_for("openai"), "max_concurrent_generations": 1}
    async with running_bot(simulator, **settings):
        first = await simulator.send_text(CAT, sender_staff_id="u1")
        await wait_until(lambda: providers.hanging == 1, timeout=30)
        second = await simulator.send_text(CAT, sender_staff_id="u2")
        await simulator.wait_until(lambda: len(simulator.cards) == 2)
        providers.script.outcome = "succeed"
        providers.release()
        await simulator.wait_until(
            lambda: all(c.params["status"] == "done" for c in simulator.cards.values()),
            timeout=30,
        )
    by_space = {card.space_id: card for card in simulator.cards.values()}
    assert [v["status"] for v in by_space["u1"].versions] == ["drawing", "done"]
    waited = by_space["u2"].versions
    assert [v["status"] for v in waited] == ["waiting", "drawing", "done"]
    assert waited[0]["title"] == chat_texts.CARD_WAITING
    assert waited[0]["markdown"].endswith(chat_texts.QUEUE_PLACE.format(place=1))
    assert first["msgId"] != second["msgId"] and simulator.replies == []


@pytest.mark.parametrize("refusal", ["permission", "qps", "server", "template"])
async def test_refused_card_answers_in_markdown_and_pauses_cards(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    refusal: str,
    caplog: pytest.LogCaptureFixture,
    no_retry_waits: list[float],
) -> None:
    """A refused card: the progress sentence and one Markdown answer, the reason logged once, no
    card call until the pause is over, then cards again."""
    caplog.set_level(logging.INFO)
    clock = Clock()
    if refusal == "template":
        simulator.card_templates = {"another.schema"}
    else:
        simulator.card_refusal = refusal  # type: ignore[assignment]
    async with running_bot(simulator, clock=clock, **CARD, card_cooldown_seconds=60):
        await simulator.send_text(CAT, sender_staff_id="u1")
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
        refused_calls = len(simulator.card_calls)
        clock.now += 59  # still paused: no card call at all
        await simulator.send_text(CAT, sender_staff_id="u2")
        await wait_until(lambda: len(image_replies(simulator)) == 2, timeout=30)
        assert len(simulator.card_calls) == refused_calls
        simulator.card_refusal, simulator.card_templates = None, None
        clock.now += 2  # the pause is over: cards again
        await simulator.send_text(CAT, sender_staff_id="u3")
        await finished_card(simulator)
    texts = [r.text for r in simulator.replies]
    assert texts.count(chat_texts.PROGRESS) == 2 and len(simulator.replies) == 4
    # 5xx: REPLY_ATTEMPTS tries (the simulator made no card, so no retry finds one made).
    assert refused_calls == (3 if refusal == "server" else 1)
    assert caplog.text.count("card API refused") == 1
    if refusal == "permission":
        assert "missing permission Card.Instance.Write" in caplog.text


async def test_refused_final_update_answers_in_markdown(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders
) -> None:
    """A card created, then QPS-refused at its final update: the answer comes as Markdown."""
    providers.script.outcome = "hang"
    async with running_bot(simulator, **CARD, **providers.settings_for("openai")):
        await simulator.send_text(CAT)
        await simulator.wait_until(lambda: len(simulator.cards) == 1)
        await wait_until(lambda: providers.hanging == 1, timeout=30)
        simulator.card_refusal = "qps"
        providers.script.outcome = "succeed"
        providers.release()
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
    (card,) = simulator.cards.values()
    assert len(card.versions) == 1 and len(simulator.replies) == 1


async def test_several_pictures_on_one_card(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """「画3张小猫」 in card style: one card whose final version shows three pictures, the first
    as its image and the other two as previews in its Markdown, each original a link."""
    async with running_bot(simulator, **CARD):
        await simulator.send_text("画3张小猫")
        card = await finished_card(simulator)
    done = card.params
    previews = [done["image"], *IMAGE_RE.findall(done["markdown"])]
    originals = LINK_RE.findall(done["markdown"])
    assert done["status"] == "done" and len(set(previews)) == 3 and len(set(originals)) == 3
    for url in previews:
        assert await asyncio.to_thread(http_status, url) == 200
    assert len(simulator.cards) == 1 and simulator.replies == []


async def test_updates_of_one_card_keep_their_distance(
    simulator: DingTalkSimulator, no_retry_waits: list[float]
) -> None:
    """Updates of one card are at least the gap apart; one overtaken while waiting is dropped."""
    tokens = AccessTokens(
        openapi_endpoint=simulator.base_url,
        client_id=simulator.client_id,
        client_secret=simulator.client_secret,
        timeout=5,
    )
    cards = CardClient(
        client_id=simulator.robot_code,
        openapi_endpoint=simulator.base_url,
        tokens=tokens,
        template_id=TEMPLATE,
        timeout=5,
        attempts=1,
        cooldown=60,
        min_gap=0.3,
        observer=NoObserver(),
    )
    request = ImageRequest(CAT, "m1", "cid1", "1", "s1", "user001", "", 0, simulator.robot_code)
    try:
        await cards.create(request, {"n": "0"})
        sent = await asyncio.gather(*(cards.update(request, {"n": str(n)}) for n in (1, 2, 3)))
    finally:
        await cards.aclose()
        await tokens.aclose()
    (card,) = simulator.cards.values()
    assert [v["n"] for v in card.versions] == ["0", "1", "3"] and sent == [True, False, True]
    times = [c.at for c in simulator.card_calls]
    assert all(later - earlier >= 0.3 for earlier, later in itertools.pairwise(times))


@pytest.mark.parametrize("template", [None, "two words", "a\nb"])
def test_card_style_needs_a_template(
    monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner, template: str | None
) -> None:
    """REPLY_STYLE=card without CARD_TEMPLATE_ID, or with one no template has, stops the bot with
    exit 2 naming the key."""
    for name, value in {"S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b", "REPLY_STYLE": "card"}.items():
        monkeypatch.setenv(name, value)
    if template is not None:
        monkeypatch.setenv("CARD_TEMPLATE_ID", template)
    done = cli_here("run")
    assert done.returncode == 2
    assert done.stderr.startswith("imgbot: configuration error: CARD_TEMPLATE_ID:"), done.stderr


async def test_reclaimed_job_updates_the_same_card(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    tmp_path: Path,
    providers_thread: FakeProvidersThread,
) -> None:
    """Killed mid-generation and restarted: the job's new claim turns the card the user already
    sees into the picture; no second card, no other message."""
    set_up_bucket()
    provider = providers_thread.fake
    provider.script.outcome = "hang"
    env = {
        **provider.env_for("openai"),
        "STATE_URL": f"sqlite:///{tmp_path}/state.db",
        "REQUEST_RECLAIM_SECONDS": "3",
        "REPLY_STYLE": "card",
        "CARD_TEMPLATE_ID": TEMPLATE,
    }
    with bot_process(simulator, tmp_path / "bot1.log", **env) as first:
        await simulator.wait_connected(timeout=30)
        await simulator.send_text(CAT)
        await wait_until(lambda: provider.hanging == 1, timeout=30)
        await simulator.wait_until(lambda: len(simulator.cards) == 1)
        first.process.kill()
        first.process.wait()
    providers_thread.release()
    provider.script.outcome = "succeed"
    with bot_process(simulator, tmp_path / "bot2.log", **env) as second:
        await wait_until(lambda: "outcome=image attempt=2" in second.logs(), timeout=60)
    (card,) = simulator.cards.values()
    assert [v["status"] for v in card.versions] == ["drawing", "done"]
    assert [c.method for c in simulator.card_calls] == ["POST", "PUT"]
    assert simulator.replies == []


@pytest.mark.parametrize("refusal", [None, "permission", "server"])
async def test_doctor_names_a_missing_card_permission(
    s3_env: dict[str, str],
    simulator: DingTalkSimulator,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
    refusal: CardRefusal | None,
) -> None:
    """With REPLY_STYLE=card, doctor says whether the app holds Card.Instance.Write (a 5xx is a
    problem, not a yes), sending no card to anyone."""
    set_up_bucket()
    env = {
        "DINGTALK_OPENAPI_ENDPOINT": simulator.base_url,
        "DINGTALK_CLIENT_ID": simulator.client_id,
        "DINGTALK_CLIENT_SECRET": simulator.client_secret,
        "REPLY_STYLE": "card",
        "CARD_TEMPLATE_ID": TEMPLATE,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    simulator.card_refusal = refusal
    done = await asyncio.to_thread(cli_here, "doctor")
    line = next(line for line in done.stdout.splitlines() if "card permission" in line)
    if refusal is None:
        assert line.startswith("ok") and "Card.Instance.Write" in line
    elif refusal == "permission":
        assert line.startswith("PROBLEM") and "lacks Card.Instance.Write" in line
    else:
        assert line.startswith("PROBLEM") and "HTTP 500" in line
    assert simulator.cards == {} and len(simulator.card_calls) == 1


async def test_simulator_create_then_deliver(simulator: DingTalkSimulator, http: Any) -> None:
    """The simulator takes the SDK's two-step shape (create, then deliver) and refuses a card
    whose data holds anything but strings."""
    async with http.post(
        simulator.base_url + "/v1.0/oauth2/accessToken",
        json={"appKey": simulator.client_id, "appSecret": simulator.client_secret},
    ) as answer:
        headers = {"x-acs-dingtalk-access-token": (await answer.json())["accessToken"]}
    base = simulator.base_url + "/v1.0/card/instances"
    card = {"cardTemplateId": TEMPLATE, "outTrackId": "t1", "cardData": {"cardParamMap": {}}}
    bad = {**card, "outTrackId": "t2", "cardData": {"cardParamMap": {"n": 1}}}
    async with http.post(base, json=bad, headers=headers) as answer:
        assert answer.status == 400
    async with http.post(base, json=card, headers=headers) as answer:
        assert answer.status == 200 and simulator.cards["t1"].conversation_id == ""
    space = {
        "outTrackId": "t1",
        "openSpaceId": "dtv1.card//IM_GROUP.cid-group",
        "imGroupOpenDeliverModel": {"robotCode": simulator.robot_code},
    }
    async with http.post(base + "/deliver", json=space, headers=headers) as answer:
        results = (await answer.json())["result"]
    assert results[0]["success"] is True and results[0]["spaceType"] == "IM_GROUP"
    assert simulator.cards["t1"].conversation_id == "cid-group"
