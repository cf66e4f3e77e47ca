"""Objects carry user metadata saying where they came from, within S3's 2 KB budget."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest

from imgbot.models import Origin
from imgbot.objects.metadata import METADATA_BUDGET, object_metadata
from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import IMAGE_RE, running_bot
from tests.conftest import CliRunner, set_up_bucket
from tests.polling import wait_until

CHAT = Origin(
    prompt="帮我画一只可爱的小猫 100% «cute»",
    msg_id="msgABC==",
    conversation_id="cid+/xyz=",
    sender_staff_id="staff 42",
)


def test_metadata_round_trips_as_ascii() -> None:
    """Every value is ASCII percent-encoding that decodes back to what was given."""
    metadata = object_metadata(CHAT, "dashscope", "wan2.2-t2i-flash")
    assert all(value.isascii() for value in metadata.values())
    decoded = {key: unquote(value) for key, value in metadata.items()}
    assert decoded == {
        "prompt": CHAT.prompt,
        "generator": "dashscope",
        "model": "wan2.2-t2i-flash",
        "dingtalk-msg-id": "msgABC==",
        "dingtalk-conversation-id": "cid+/xyz=",
        "dingtalk-sender-staff-id": "staff 42",
    }


@pytest.mark.parametrize("prompt", ["猫" * 5000, "a%" * 3000, "🐱" * 1000, "x" * 2047])
def test_long_prompts_are_cut_to_the_budget(prompt: str) -> None:
    """A long prompt is cut at a character boundary so that keys and values fit in 2 KB."""
    metadata = object_metadata(Origin(prompt=prompt, msg_id="m1"), "placeholder", "")
    size = sum(len(f"x-amz-meta-{key}") + len(value) for key, value in metadata.items())
    assert size <= METADATA_BUDGET
    kept = unquote(metadata["prompt"], errors="strict")
    assert prompt.startswith(kept) and len(kept) > 100
    assert "model" not in metadata  # empty values are left out


def head_metadata(admin_s3: Any, bucket: str, key: str) -> dict[str, str]:
    metadata: dict[str, str] = admin_s3.head_object(Bucket=bucket, Key=key)["Metadata"]
    return {name: unquote(value) for name, value in metadata.items()}


@pytest.mark.minio
def test_longest_prompt_fits_minio(
    s3_env: dict[str, str], admin_s3: Any, bucket: str, cli_here: CliRunner
) -> None:
    """A prompt at MAX_PROMPT_CHARS of multi-byte text is stored, cut to the budget, by MinIO."""
    set_up_bucket()
    done = cli_here("draw", "猫" * 1000, "--json")
    assert done.returncode == 0, done.stderr
    stored = head_metadata(admin_s3, bucket, json.loads(done.stdout)["key"])["prompt"]
    assert stored == "猫" * len(stored) and 150 < len(stored) < 1000


@pytest.mark.minio
def test_cli_draw_records_prompt_and_generator(
    s3_env: dict[str, str], admin_s3: Any, bucket: str, cli_here: CliRunner
) -> None:
    """`imgbot draw` stores the prompt and generator on both objects, no chat fields."""
    set_up_bucket()
    done = cli_here("draw", "一只橘猫", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    for key in (document["key"], document["preview_key"]):
        assert head_metadata(admin_s3, bucket, key) == {
            "prompt": "一只橘猫",
            "generator": "placeholder",
        }


@pytest.mark.minio
@pytest.mark.e2e
async def test_chat_request_records_its_message(
    simulator: DingTalkSimulator, s3_env: dict[str, str], admin_s3: Any, bucket: str
) -> None:
    """A chat request's objects name its DingTalk msgId, conversation and sender."""
    async with running_bot(simulator) as bot:
        message = await simulator.send_text("画一只猫", sender_staff_id="staff7")
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
    url = IMAGE_RE.findall(simulator.replies[-1].text)[0]
    preview_key = url.split(f"/{bucket}/", 1)[1].split("?", 1)[0]
    assert head_metadata(admin_s3, bucket, preview_key) == {
        "prompt": "画一只猫",
        "generator": "placeholder",
        "dingtalk-msg-id": str(message["msgId"]),
        "dingtalk-conversation-id": str(message["conversationId"]),
        "dingtalk-sender-staff-id": "staff7",
    }


def test_outsized_ids_are_left_out_not_fatal() -> None:
    """Ids too long for the budget are left out, the conversation (which decides who may edit
    the picture) last; the rest, the prompt included, still fit."""
    huge = Origin(prompt="猫", msg_id="m" * 256, conversation_id="+" * 256, sender_staff_id="s")
    metadata = object_metadata(huge, "placeholder", "")
    size = sum(len(f"x-amz-meta-{key}") + len(value) for key, value in metadata.items())
    assert size <= METADATA_BUDGET
    assert "dingtalk-msg-id" not in metadata
    assert unquote(metadata["prompt"]) == "猫"
    assert unquote(metadata["dingtalk-conversation-id"]) == "+" * 256
