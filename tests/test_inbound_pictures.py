"""Parsing the messages that carry a picture: picture, richText, quotes, hostile shapes."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgbot.chat.inbound import MalformedMessage, parse_request
from imgbot.models import PictureRef
from imgbot.objects.keys import EXTENSIONS, is_our_key, object_keys

TOKEN = "abcdefghijklmnopqrstuvwxyz"  # 26 base32 characters, like keys.new_token()
ORIGINAL = f"https://s3.example.com/imgbot/imagegen/2026/12/01/{TOKEN}.png?X-Amz-Signature=1"
PREVIEW = f"https://s3.example.com/imgbot/imagegen/2026/12/01/{TOKEN}.preview.jpg?X-Amz-Sig=2"
BOT_MARKDOWN = f"#### 图片已生成\n> 一只猫\n\n![预览]({PREVIEW})\n[查看原图]({ORIGINAL})\n"


def message(**fields: Any) -> dict[str, Any]:
    """A chatbot payload with the given fields."""
    return {"msgId": "m1", "conversationId": "c1", "senderStaffId": "u1", **fields}


def quoting(text: str, replied: Any) -> dict[str, Any]:
    """A text message quoting ``replied``."""
    return message(
        msgtype="text", text={"content": text, "isReplyMsg": True, "repliedMsg": replied}
    )


def test_picture_message_uses_download_code() -> None:
    """A picture message refers to its downloadCode, never its pictureDownloadCode."""
    request = parse_request(
        message(msgtype="picture", content={"pictureDownloadCode": "P", "downloadCode": "D"})
    )
    assert request.message_type == "picture"
    assert request.picture == PictureRef(download_code="D") and request.prompt == ""


def test_picture_with_only_picture_download_code_has_no_reference() -> None:
    """A picture whose content holds only pictureDownloadCode gives no picture reference."""
    request = parse_request(message(msgtype="picture", content={"pictureDownloadCode": "P"}))
    assert request.message_type == "picture" and request.picture is None


def test_rich_text_joins_text_and_takes_first_picture() -> None:
    """richText: the text items joined are the instruction, the first picture is edited."""
    items = [
        {"text": "背景"},
        {"pictureDownloadCode": "p1", "downloadCode": "d1", "type": "picture"},
        {"text": "换成海边"},
        {"pictureDownloadCode": "p2", "downloadCode": "d2", "type": "picture"},
    ]
    request = parse_request(message(msgtype="richText", content={"richText": items}))
    assert request.prompt == "背景 换成海边"
    assert request.picture == PictureRef(download_code="d1")


def test_rich_text_with_unusable_picture_is_marked() -> None:
    """richText whose picture has only pictureDownloadCode carries an empty reference, so the
    bot answers about the picture instead of drawing from the text alone."""
    items = [{"text": "换成海边"}, {"pictureDownloadCode": "p1", "type": "picture"}]
    request = parse_request(message(msgtype="richText", content={"richText": items}))
    assert request.picture == PictureRef()


def test_quoted_picture_object_and_json_string() -> None:
    """A text quoting a picture edits it, whether repliedMsg.content is an object or JSON text."""
    for content in ({"downloadCode": "dq"}, json.dumps({"downloadCode": "dq"})):
        request = parse_request(quoting("背景换成海边", {"msgType": "picture", "content": content}))
        assert request.prompt == "背景换成海边"
        assert request.picture == PictureRef(download_code="dq")
        assert not request.quote_unreadable


def test_quoted_rich_text_items() -> None:
    """A quoted richText's items (msgType/content/downloadCode) give its first picture."""
    items = [{"msgType": "text", "content": "看这张"}, {"msgType": "picture", "downloadCode": "dr"}]
    replied = {"msgType": "richText", "content": {"richText": items}}
    assert parse_request(quoting("变成黑白", replied)).picture == PictureRef(download_code="dr")


def test_quoted_bot_markdown_names_our_original() -> None:
    """Quoting the bot's Markdown image reply refers to the stored original, not the preview."""
    replied = {"msgType": "markdown", "content": {"title": "图片已生成", "text": BOT_MARKDOWN}}
    request = parse_request(quoting("加一顶帽子", replied))
    assert request.picture == PictureRef(stored=f"2026/12/01/{TOKEN}.png")


@pytest.mark.parametrize(
    "replied",
    [
        {"msgType": "text", "content": {"text": f"看这个 {PREVIEW}"}},
        {
            "msgType": "interactiveCard",
            "content": json.dumps({"cardContent": [{"value": PREVIEW}]}),
        },
        {
            "msgType": "interactiveCard",
            "content": {"cardContent": {"children": [{"children": [{"value": PREVIEW}]}]}},
        },
    ],
)
def test_quoted_preview_link_in_text_or_card(replied: dict[str, Any]) -> None:
    """A quoted text or card holding only our preview's link refers to that stored preview."""
    request = parse_request(quoting("加一顶帽子", replied))
    assert request.picture == PictureRef(stored=f"2026/12/01/{TOKEN}.preview.jpg")


def test_reply_without_replied_msg_is_unreadable_quote() -> None:
    """isReplyMsg with only originalMsgId: no picture, and the quote is marked unreadable."""
    payload = message(
        msgtype="text", text={"content": "改成蓝色", "isReplyMsg": True}, originalMsgId="o1"
    )
    request = parse_request(payload)
    assert request.picture is None and request.quote_unreadable


def test_quoted_plain_text_is_a_drawing() -> None:
    """Quoting a text without links is a plain text request."""
    request = parse_request(quoting("画一只猫", {"msgType": "text", "content": {"text": "你好"}}))
    assert request.picture is None and not request.quote_unreadable
    assert request.prompt == "画一只猫"


def test_foreign_link_is_not_our_key() -> None:
    """A quoted link whose path is not our key shape refers to nothing."""
    replied = {"msgType": "text", "content": {"text": "https://evil.example/2026/12/01/x.png"}}
    assert parse_request(quoting("改", replied)).picture is None


def test_huge_rich_text_is_malformed() -> None:
    """A richText list longer than any person's message is a malformed message."""
    items = [{"text": "a"}] * 10_000
    with pytest.raises(MalformedMessage):
        parse_request(message(msgtype="richText", content={"richText": items}))


@pytest.mark.parametrize(
    "payload",
    [
        message(msgtype="picture", content="not an object"),
        message(msgtype="picture", content={"downloadCode": 12}),
        message(msgtype="picture", content={"downloadCode": "x" * 100_000}),
        message(msgtype="richText", content={"richText": "nope"}),
        message(msgtype="richText", content={"richText": [1, None, [], {"text": 5}, "s"]}),
        quoting("改", "just a string"),
        quoting("改", {"msgType": "picture", "content": "{not json"}),
        quoting("改", {"msgType": "picture", "content": json.dumps(json.dumps({"a": 1}))}),
        quoting("改", {"msgType": "richText", "content": {"richText": {"a": 1}}}),
        quoting("改", {"msgType": "markdown", "content": [[[[[[[[[[["deep"]]]]]]]]]]]}),
        quoting("改", {"msgType": "text", "content": {"text": "https://[::1/2026/12/01/x.png"}}),
        quoting("改", {"msgType": "text", "content": {"text": "see http://[v1.x]:99999/a"}}),
    ],
)
def test_hostile_shapes_give_no_picture(payload: dict[str, Any]) -> None:
    """Wrong types and nested strings end in a request without a picture, never an exception."""
    assert parse_request(payload).picture is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(tail=st.text(max_size=60))
def test_any_link_in_a_quote_parses(tail: str) -> None:
    """Whatever follows a scheme in a quoted text, parsing ends in a request, never a crash."""
    replied = {"msgType": "text", "content": {"text": f"https://{tail} http://[{tail}"}}
    request = parse_request(quoting("改", replied))
    assert request.prompt == "改"


@settings(max_examples=300, deadline=None)
@given(
    msgtype=st.sampled_from(["text", "picture", "richText", "unknownMsgType"]),
    content=_json,
    replied=_json,
)
def test_any_shape_parses_or_is_malformed(msgtype: str, content: Any, replied: Any) -> None:
    """Any JSON in content and repliedMsg gives a request or MalformedMessage, nothing else."""
    payload = message(msgtype=msgtype, content=content)
    payload["text"] = {"content": "改", "isReplyMsg": True, "repliedMsg": replied}
    with contextlib.suppress(MalformedMessage):
        parse_request(payload)


def test_request_with_picture_survives_json() -> None:
    """A request with a picture reference round-trips through JSON (durable jobs store it so)."""
    from pydantic import TypeAdapter

    items = [{"text": "换成海边"}, {"downloadCode": "d1", "type": "picture"}]
    request = parse_request(message(msgtype="richText", content={"richText": items}))
    adapter = TypeAdapter(type(request))
    assert adapter.validate_json(adapter.dump_json(request)) == request


def nested(depth: int, opener: str) -> str:
    """JSON text nesting ``depth`` levels of lists (``[``) or objects (``{``)."""
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("kind", ["text", "markdown", "picture", "interactiveCard"])
def test_deeply_nested_quote_is_an_unreadable_quote(kind: str) -> None:
    """40 KB of ``[`` as a quoted content string is a quote that cannot be read (answered with
    the hint), not an exception that leaves the message unanswered."""
    request = parse_request(quoting("改成蓝色", {"msgType": kind, "content": "[" * 40_000}))
    assert request.picture is None and request.quote_unreadable
    assert request.prompt == "改成蓝色"


@settings(max_examples=200, deadline=None)
@given(depth=st.integers(min_value=0, max_value=5_000), opener=st.sampled_from(["[", "{"]))
def test_any_nesting_depth_of_a_quote_parses(depth: int, opener: str) -> None:
    """A quoted content string nested to any depth gives a request; past MAX_JSON_DEPTH the
    quote is unreadable, within it the quote is read as before."""
    from imgbot.chat.bounded_json import MAX_JSON_DEPTH

    text = nested(depth, opener)
    request = parse_request(quoting("改", {"msgType": "markdown", "content": text}))
    assert request.quote_unreadable == (depth > MAX_JSON_DEPTH)
    assert request.picture is None


# ---- one definition of our keys: what the bot stores is what a quote finds, nothing else ----

_LINKS = [
    "https://s3.example.com/bucket/{key}?X-Amz-Signature=abc&X-Amz-Expires=600",
    "https://bucket.s3.example.com/{key}",
    "https://cdn.example.com/pics/{quoted}?auth_key=1-0-0-abc",
]


@settings(max_examples=300, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(9999, 12, 31)),
    ext=st.sampled_from(EXTENSIONS),
    preview_ext=st.sampled_from(EXTENSIONS),
    prefix=st.sampled_from(["imagegen/", "", "a/b_c.d-e/"]),
    link=st.sampled_from(_LINKS),
    which=st.sampled_from([0, 1]),
)
def test_every_key_the_bot_makes_is_found_in_a_quoted_link(
    when: datetime, ext: str, preview_ext: str, prefix: str, link: str, which: int
) -> None:
    """Any original or preview key ``object_keys`` makes, in any of our link styles, is found
    when its link is quoted, and the studio takes it as one of ours."""
    key = object_keys(prefix, when, ext, preview_ext)[which]
    url = link.format(key=key, quoted=quote(key))
    replied = {"msgType": "markdown", "content": {"text": f"[查看原图]({url})"}}
    picture = parse_request(quoting("改", replied)).picture
    assert picture == PictureRef(stored=key[len(prefix) :])
    assert is_our_key(prefix, prefix + picture.stored)


NOT_KEYS = [
    f"2026/12/01/{TOKEN}.gif",
    f"2026/12/01/{TOKEN}.jpeg",
    f"2026/12/01/{TOKEN}.preview.gif",
    f"2026/12/01/{TOKEN}.PNG",
    f"2026/12/01/{TOKEN.upper()}.png",
    f"2026/12/01/{TOKEN[:-1]}.png",
    f"2026/12/01/{TOKEN}a.png",
    f"2026/12/01/{TOKEN[:-1]}0.png",
    f"٢٠٢٦/١٢/٠١/{TOKEN}.png",  # Arabic-Indic digits: \\d would take them
    f"12026/12/01/{TOKEN}.png",
    f"2026/12/01/{TOKEN}.png.exe",
    f"2026/12/01/{TOKEN}.preview.preview.png",
    f"2026-12-01/{TOKEN}.png",
]


@pytest.mark.parametrize("path", NOT_KEYS)
def test_a_link_that_is_not_to_one_of_our_keys_names_nothing(path: str) -> None:
    """A quoted link whose path ends in something near our key shape but not it (another type,
    digits of another script, a token of another length) refers to no picture."""
    replied = {"msgType": "text", "content": {"text": f"https://s3.example.com/b/{path}"}}
    assert parse_request(quoting("改", replied)).picture is None
    assert not is_our_key("", path)


@settings(max_examples=300, deadline=None)
@given(
    path=st.from_regex(
        r"\A/(\w{1,4}/)?[0-9٠-٩a]{4}/\d{2}/\d{2}/([a-z2-7]{26}|[a-z0-9]{25,27})(\.preview)?\.(png|jpg|jpeg|webp|gif)\Z"
    )
)
def test_what_a_quote_finds_the_studio_takes_as_ours(path: str) -> None:
    """Whatever key a quoted link yields is one the studio accepts as ours under any prefix."""
    replied = {"msgType": "text", "content": {"text": f"https://s3.example.com{path}"}}
    picture = parse_request(quoting("改", replied)).picture
    if picture is not None:
        assert is_our_key("imagegen/", "imagegen/" + picture.stored)


def test_group_members_without_staff_ids_are_different_senders() -> None:
    """Two people in one group whom DingTalk gave no staff id are still two senders, for the
    rate limit and for the turns their pictures take alike."""
    first, second = (
        parse_request(
            {
                "msgId": f"m{n}",
                "conversationId": "group-1",
                "conversationType": "2",
                "senderId": f"$:LWCP_v1:$sender{n}",
                "msgtype": "text",
                "text": {"content": "画猫"},
            }
        )
        for n in (1, 2)
    )
    assert first.sender != second.sender
    assert (first.origin.sender, second.origin.sender) == (first.sender, second.sender)
