"""Local stand-ins for DashScope's task API and an OpenAI-compatible images API, scripted per test.

One aiohttp server on 127.0.0.1 (free port) answers both APIs as documented, serves result
pictures at signed-looking URLs on itself, and records every request it gets. ``Script`` says how
it behaves; ``FakeProvidersThread`` runs it on its own loop so subprocess tests can block.

The edit APIs check the picture as their documentation says they do (sides, bytes, squareness,
format) and keep every picture they received, decoded from the multipart form (parsed with the
standard library's email parser, not aiohttp's) or from the ``data:`` URI, in ``pictures``.
Drawing requests are checked against each model's documented sizes, ``n`` and options
(``provider_rules``); a wrong one is answered with the provider's own 400.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Literal

from aiohttp import web
from PIL import Image

from imgbot.simulator.loop_thread import LoopThread
from tests.provider_rules import (
    SYNC_PARAMETERS,
    TASK_PARAMETERS,
    dashscope_family,
    dashscope_problem,
    openai_problem,
)

VALID_KEY = "sk-fake-valid-0123456789"
DASHSCOPE_SUBMIT = "/api/v1/services/aigc/text2image/image-synthesis"
DASHSCOPE_EDIT_TASK = "/api/v1/services/aigc/image2image/image-synthesis"
DASHSCOPE_EDIT_SYNC = "/api/v1/services/aigc/multimodal-generation/generation"
MB = 1024 * 1024
# What each edit API documents for its input picture: sides (px), bytes, formats, square.
QWEN_INPUT = (384, 3072, 10 * MB, {"JPEG", "PNG", "BMP", "TIFF", "WEBP"}, False)
WANX_INPUT = (512, 4096, 10 * MB, {"JPEG", "PNG", "BMP", "TIFF", "WEBP"}, False)
DALL_E_2_INPUT = (1, 100_000, 4 * MB - 1, {"PNG"}, True)
GPT_IMAGE_INPUT = (1, 100_000, 50 * MB, {"PNG", "JPEG", "WEBP"}, False)
# The documented moderation refusals: DashScope's code and message, OpenAI's GPT image code.
DATA_INSPECTION = "DataInspectionFailed"
INAPPROPRIATE = "Input data may contain inappropriate content."
MODERATION_BLOCKED = "moderation_blocked"
RESULT_QUERY = "Expires=1900000000&OSSAccessKeyId=LTAIfake&Signature=c2lnbmVk"

Outcome = Literal["succeed", "fail", "moderated", "hang"]
Kind = Literal["dashscope", "openai"]


def small_png(width: int = 48, height: int = 32) -> bytes:
    """A small PNG whose every pixel differs from its neighbours, to compare exactly."""
    image = Image.new("RGB", (width, height))
    pixels = [(x * 5 % 256, y * 7 % 256, x * y % 256) for y in range(height) for x in range(width)]
    image.putdata(pixels)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Script:
    """How the fake behaves; tests set fields before the generator calls it."""

    image: bytes = field(default_factory=small_png)
    outcome: Outcome = "succeed"
    throttle: int = 0
    """Answer this many API requests with ``throttle_status`` before behaving."""
    throttle_status: int = 429
    retry_after: str = "0"
    running_polls: int = 1
    """DashScope polls answered PENDING/RUNNING before the task ends."""
    failure: tuple[str, str] = ("InternalError.Algo", "Algorithm process error: mocked failure.")
    result_url: str | None = None
    """Replaces the URL of the result picture in answers (e.g. a file:// URL)."""
    openai_answer: Literal["b64", "url"] = "b64"
    chunked: bool = False
    """Serve the result without Content-Length."""
    moderated_in: Literal["call", "task", "result"] = "call"
    """Where DashScope answers the "moderated" outcome of a task (drawing, wanx edits): HTTP 400
    DataInspectionFailed at submit; the task FAILED with that code; or the task SUCCEEDED with a
    result item carrying that code instead of a URL."""
    refused_results: int = 0
    """In a DashScope task that SUCCEEDED, this many of its ``n`` results (the last ones) carry
    DataInspectionFailed and its message instead of a URL, and ``usage.image_count`` and
    ``task_metrics`` count only the others: DashScope's answer when it refuses some of them."""


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    form: dict[str, bytes] = field(default_factory=dict)
    """The fields of a multipart form, by name."""


class FakeProviders:
    """The fake server: DashScope at the root, the OpenAI-compatible API under /v1."""

    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[Recorded] = []
        self.url = ""
        self._polls: dict[str, int] = {}
        self._task_n: dict[str, int] = {}
        self._throttled = 0
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._released: asyncio.Event | None = None
        self.hanging = 0
        """API requests held right now by the "hang" outcome."""
        self.pictures: list[bytes] = []
        """Every picture an edit API received, as decoded from the request, in order."""

    def settings_for(self, kind: Kind, model: str = "gpt-image-2") -> dict[str, str]:
        """Settings (as ``load_settings`` takes them) that make this stand-in imgbot's generator."""
        if kind == "openai":
            return {
                "image_generator": "openai",
                "openai_api_key": VALID_KEY,
                "openai_base_url": f"{self.url}/v1",
                "openai_image_model": model,
            }
        return {
            "image_generator": "dashscope",
            "dashscope_api_key": VALID_KEY,
            "dashscope_base_url": self.url,
        }

    def env_for(self, kind: Kind, model: str = "gpt-image-2") -> dict[str, str]:
        """``settings_for`` as environment variables, for a CLI or bot process."""
        return {name.upper(): value for name, value in self.settings_for(kind, model).items()}

    def api_requests(self, method: str | None = None) -> list[Recorded]:
        """Requests to the provider APIs (not result downloads), optionally of one method."""
        return [
            r
            for r in self.requests
            if not r.path.startswith("/results/") and (method is None or r.method == method)
        ]

    def downloads(self) -> list[Recorded]:
        """Requests for result pictures."""
        return [r for r in self.requests if r.path.startswith("/results/")]

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._stopping = asyncio.Event()
        self._released = asyncio.Event()
        # Edit requests carry pictures of up to tens of megabytes (aiohttp allows 1 MB by default).
        app = web.Application(middlewares=[self._record], client_max_size=80 * MB)
        app.router.add_post(DASHSCOPE_SUBMIT, self._dashscope_submit)
        app.router.add_get("/api/v1/tasks/{task_id}", self._dashscope_task)
        app.router.add_post("/v1/images/generations", self._openai_generate)
        app.router.add_post("/v1/images/edits", self._openai_edit)
        app.router.add_post(DASHSCOPE_EDIT_SYNC, self._dashscope_edit_sync)
        app.router.add_post(DASHSCOPE_EDIT_TASK, self._dashscope_edit_task)
        app.router.add_get("/results/{name}", self._result)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def release(self) -> None:
        """Let every request held by the "hang" outcome go on, and later ones pass at once."""
        if self._released is not None:
            self._released.set()

    async def stop(self) -> None:
        """Release hanging handlers and stop listening."""
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def result_url(self) -> str:
        """Where the current picture is served, with a signed-looking query string."""
        return self.script.result_url or f"{self.url}/results/{uuid.uuid4().hex}.png?{RESULT_QUERY}"

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw and request.content_type == "application/json" else None
        form = _form_fields(request.headers.get("Content-Type", ""), raw)
        self.requests.append(
            Recorded(
                request.method, request.path, dict(request.headers), body, time.monotonic(), form
            )
        )
        response: web.StreamResponse = await handler(request)
        return response

    async def _gate(self, request: web.Request, openai: bool) -> web.Response | None:
        """The answers every API call may get before its own: wrong key, 429, hanging."""
        if request.headers.get("Authorization") != f"Bearer {VALID_KEY}":
            if openai:
                return _error(True, 401, "invalid_api_key", "Incorrect API key provided: sk-wr***.")
            return _error(False, 401, "InvalidApiKey", "Invalid API-key provided.")
        if self._throttled < self.script.throttle:
            self._throttled += 1
            if self.script.throttle_status != 429:
                status = self.script.throttle_status
                return _error(openai, status, "InternalError", "The service is unavailable.")
            answer = _error(openai, 429, "Throttling.RateQuota", "Requests rate limit exceeded.")
            answer.headers["Retry-After"] = self.script.retry_after
            return answer
        if self.script.outcome == "hang" and self._stopping and self._released:
            self.hanging += 1
            try:
                waits = {asyncio.ensure_future(e.wait()) for e in (self._stopping, self._released)}
                _, pending = await asyncio.wait(
                    waits, timeout=60, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
            finally:
                self.hanging -= 1
        return None

    async def _dashscope_submit(self, request: web.Request) -> web.Response:
        gated = await self._gate(request, openai=False)
        if gated is not None:
            return gated
        if request.headers.get("X-DashScope-Async") != "enable":
            message = "current user api does not support synchronous calls"
            return _error(False, 403, "AccessDenied", message)
        body = await request.json()
        if not body.get("model") or not body.get("input", {}).get("prompt"):
            message = "Required parameter(s) missing or invalid."
            return _error(False, 400, "InvalidParameter", message)
        if dashscope_family(body["model"]) == "qwen-flex" or body["model"].startswith("wan2.6"):
            return _error(False, 400, "InvalidParameter", "Model not exist.")
        # The task API takes negative_prompt in input, beside the prompt, not in parameters.
        negative = {"negative_prompt": body["input"].get("negative_prompt", "")}
        problem = dashscope_problem(
            body["model"], body.get("parameters", {}), TASK_PARAMETERS
        ) or dashscope_problem(body["model"], negative, {"negative_prompt"})
        if problem:
            return _error(False, 400, "InvalidParameter", problem)
        return self._new_task(body.get("parameters", {}).get("n", 1))

    def _new_task(self, n: int = 1) -> web.Response:
        if self.script.outcome == "moderated" and self.script.moderated_in == "call":
            return _moderated_dashscope()
        task_id = str(uuid.uuid4())
        self._polls[task_id] = 0
        self._task_n[task_id] = n
        return web.json_response(
            {"output": {"task_id": task_id, "task_status": "PENDING"}, "request_id": _rid()}
        )

    async def _dashscope_edit_task(self, request: web.Request) -> web.Response:
        """wanx2.1-imageedit: a task whose input.base_image_url is the picture (URL or data:)."""
        gated = await self._gate(request, openai=False)
        if gated is not None:
            return gated
        if request.headers.get("X-DashScope-Async") != "enable":
            message = "current user api does not support synchronous calls"
            return _error(False, 403, "AccessDenied", message)
        body = await request.json()
        given = body.get("input", {})
        if not body.get("model") or not given.get("prompt") or not given.get("function"):
            return _error(False, 400, "InvalidParameter", "Required parameter(s) missing.")
        problem = self._take_data_uri(given.get("base_image_url"), WANX_INPUT)
        if problem:
            return _error(False, 400, "InvalidParameter", problem)
        return self._new_task(body.get("parameters", {}).get("n", 1))

    async def _dashscope_edit_sync(self, request: web.Request) -> web.Response:
        """qwen-image-edit: one synchronous answer carrying the result's URL."""
        gated = await self._gate(request, openai=False)
        if gated is not None:
            return gated
        body = await request.json()
        messages = body.get("input", {}).get("messages")
        content = messages[0].get("content") if isinstance(messages, list) and messages else None
        images = [c["image"] for c in content or [] if isinstance(c, dict) and "image" in c]
        texts = [c["text"] for c in content or [] if isinstance(c, dict) and c.get("text")]
        if not images and len(texts) == 1 and body.get("model"):
            return self._dashscope_draw_sync(body)
        if not body.get("model") or len(images) != 1 or len(texts) != 1:
            message = "Required parameter(s) missing or invalid: one image and one text."
            return _error(False, 400, "InvalidParameter", message)
        problem = self._take_data_uri(images[0], QWEN_INPUT)
        if problem:
            return _error(False, 400, "InvalidParameter", problem)
        return self._sync_answer()

    def _dashscope_draw_sync(self, body: dict[str, Any]) -> web.Response:
        """wan2.6-t2i and the qwen-image family: a drawing answered at once."""
        model = body["model"]
        if not model.startswith("wan2.6") and not model.startswith("qwen-image"):
            return _error(False, 400, "InvalidParameter", "Model not exist.")
        problem = dashscope_problem(model, body.get("parameters", {}), SYNC_PARAMETERS)
        if problem:
            return _error(False, 400, "InvalidParameter", problem)
        return self._sync_answer(body.get("parameters", {}).get("n", 1))

    def _sync_answer(self, n: int = 1) -> web.Response:
        if self.script.outcome == "moderated":
            return _moderated_dashscope()
        if self.script.outcome == "fail":
            return _error(False, 500, *self.script.failure)
        choices = [
            {
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": [{"image": self.result_url()}]},
            }
            for _ in range(n)
        ]
        return web.json_response(
            {
                "output": {"choices": choices},
                "usage": {"width": 1024, "height": 768, "image_count": n},
                "request_id": _rid(),
            }
        )

    def _take_data_uri(self, uri: object, rules: tuple[int, int, int, set[str], bool]) -> str:
        """Decode a ``data:image/...;base64,`` URI, keep the picture, and return what is wrong
        with it by the API's documented rules ("" when nothing is)."""
        if not isinstance(uri, str) or not uri.startswith("data:image/"):
            return "The image must be a URL or a data:image/...;base64 URI."
        header, _, encoded = uri.partition(",")
        if not header.endswith(";base64"):
            return "The data URI must be base64."
        try:
            picture = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return "The data URI is not valid base64."
        self.pictures.append(picture)
        return _picture_problem(picture, rules)

    async def _dashscope_task(self, request: web.Request) -> web.Response:
        gated = await self._gate(request, openai=False)
        if gated is not None:
            return gated
        task_id = request.match_info["task_id"]
        if task_id not in self._polls:
            return web.json_response(
                {"output": {"task_id": task_id, "task_status": "UNKNOWN"}, "request_id": _rid()}
            )
        self._polls[task_id] += 1
        output: dict[str, Any] = {"task_id": task_id}
        if self._polls[task_id] <= self.script.running_polls:
            output["task_status"] = "PENDING" if self._polls[task_id] == 1 else "RUNNING"
        elif self.script.outcome == "fail":
            code, message = self.script.failure
            output.update(task_status="FAILED", code=code, message=message)
        elif self.script.outcome == "moderated" and self.script.moderated_in == "task":
            output.update(task_status="FAILED", code=DATA_INSPECTION, message=INAPPROPRIATE)
        elif self.script.outcome == "moderated":
            refused = {"code": DATA_INSPECTION, "message": INAPPROPRIATE}
            output.update(task_status="SUCCEEDED", results=[refused])
        else:
            n = self._task_n.get(task_id, 1)
            refused = min(self.script.refused_results, n)
            results: list[dict[str, str]] = [{"url": self.result_url()} for _ in range(n - refused)]
            results += [{"code": DATA_INSPECTION, "message": INAPPROPRIATE}] * refused
            metrics = {"TOTAL": n, "SUCCEEDED": n - refused, "FAILED": refused}
            output.update(task_status="SUCCEEDED", results=results, task_metrics=metrics)
            answer = {"output": output, "usage": {"image_count": n - refused}, "request_id": _rid()}
            return web.json_response(answer)
        return web.json_response({"output": output, "request_id": _rid()})

    async def _openai_generate(self, request: web.Request) -> web.Response:
        gated = await self._gate(request, openai=True)
        if gated is not None:
            return gated
        body = await request.json()
        if not body.get("model") or not body.get("prompt"):
            return _error(True, 400, "invalid_value", "model and prompt are required")
        refused = openai_problem(body["model"], body)
        if refused:
            return _error(True, 400, "invalid_value", refused[1], param=refused[0])
        n = body.get("n", 1)
        if self.script.outcome == "moderated":
            # GPT image models answer moderation_blocked; dall-e-3 answered the older code.
            code = "content_policy_violation" if body["model"] == "dall-e-3" else MODERATION_BLOCKED
            return _error(True, 400, code, "Your request was rejected by the safety system.")
        if self.script.outcome == "fail":
            return _error(True, 400, *self.script.failure)
        if self.script.openai_answer == "url":
            items = [{"url": self.result_url()} for _ in range(n)]
        else:
            items = [{"b64_json": base64.b64encode(self.script.image).decode()} for _ in range(n)]
        return web.json_response({"created": int(time.time()), "data": items})

    async def _openai_edit(self, request: web.Request) -> web.Response:
        """POST /v1/images/edits: multipart image (or image[]), prompt, model, n, size."""
        gated = await self._gate(request, openai=True)
        if gated is not None:
            return gated
        form = self.requests[-1].form
        picture = form.get("image", form.get("image[]"))
        if picture is None or not form.get("prompt") or not form.get("model"):
            return _error(True, 400, "invalid_value", "image, prompt and model are required")
        self.pictures.append(picture)
        model = form["model"].decode()
        fields = {k: v.decode() for k, v in form.items() if k not in ("image", "image[]", "mask")}
        refused = openai_problem(model, fields)
        rules = DALL_E_2_INPUT if model == "dall-e-2" else GPT_IMAGE_INPUT
        problem = _picture_problem(picture, rules)
        if refused or problem:
            param, message = refused or ("image", f"Invalid input image - {problem}")
            code = "invalid_value" if refused else "invalid_image"
            return _error(True, 400, code, message, param=param)
        if self.script.outcome == "moderated":
            return _error(
                True,
                400,
                "moderation_blocked",
                "Your request was rejected by the safety system.",
            )
        if self.script.outcome == "fail":
            return _error(True, 400, *self.script.failure)
        if self.script.openai_answer == "url":
            item = {"url": self.result_url()}
        else:
            item = {"b64_json": base64.b64encode(self.script.image).decode()}
        return web.json_response({"created": int(time.time()), "data": [item]})

    async def _result(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["name"] == "redirect.png":
            raise web.HTTPFound("file:///etc/passwd")
        if request.query.get("Signature") is None:
            return web.Response(status=403, text="AccessDenied")
        if not self.script.chunked:
            return web.Response(body=self.script.image, content_type="image/png")
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(self.script.image), 4096):
            await response.write(self.script.image[start : start + 4096])
        await response.write_eof()
        return response


class FakeProvidersThread:
    """A FakeProviders on its own event loop (the simulator's LoopThread), for tests that block."""

    def __init__(self) -> None:
        self.fake = FakeProviders()
        self._thread = LoopThread("fake-providers")

    def start(self) -> FakeProviders:
        """Start the loop and the server; return the server."""
        self._thread.start()
        self._thread.run_blocking(self.fake.start(), timeout=10)
        return self.fake

    def release(self) -> None:
        """``FakeProviders.release`` from another thread."""
        self._thread.call_soon(self.fake.release)

    def stop(self) -> None:
        """Stop the server, then the loop."""
        self._thread.run_blocking(self.fake.stop(), timeout=10)
        self._thread.stop_blocking()


def _error(
    openai: bool, status: int, code: str, message: str, param: str | None = None
) -> web.Response:
    if openai:
        kind = "rate_limit_error" if status == 429 else "invalid_request_error"
        error = {"message": message, "type": kind, "param": param, "code": code}
        document: dict[str, Any] = {"error": error}
    else:
        document = {"code": code, "message": message, "request_id": _rid()}
    return web.json_response(document, status=status)


def _rid() -> str:
    return str(uuid.uuid4())


def _moderated_dashscope() -> web.Response:
    return _error(
        False, 400, "DataInspectionFailed", "Input data may contain inappropriate content."
    )


def _picture_problem(picture: bytes, rules: tuple[int, int, int, set[str], bool]) -> str:
    """What is wrong with ``picture`` by an API's documented input rules, or ""."""
    low, high, max_bytes, formats, square = rules
    if len(picture) > max_bytes:
        return f"the image is {len(picture)} bytes, more than {max_bytes}"
    try:
        with Image.open(io.BytesIO(picture)) as image:
            image.load()
            kind, (width, height) = image.format or "", image.size
    except Exception:
        return "the image could not be decoded"
    if kind not in formats:
        return f"format must be one of {sorted(formats)}, got {kind}"
    if not all(low <= side <= high for side in (width, height)):
        return f"width and height must be within [{low}, {high}], got {width}x{height}"
    if square and width != height:
        return f"the image must be square, got {width}x{height}"
    return ""


def _form_fields(content_type: str, raw: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body by name (the last of a repeated name)."""
    if not content_type.startswith("multipart/form-data"):
        return {}
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts() if isinstance(message, EmailMessage) else []:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields
