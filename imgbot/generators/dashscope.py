"""DashScope (Alibaba Cloud Model Studio): text-to-image and picture edits.

Drawing: each model family is called as ``dashscope_models`` says. The task API: submit
``POST /api/v1/services/aigc/text2image/image-synthesis`` with ``X-DashScope-Async: enable``,
poll ``GET /api/v1/tasks/{task_id}`` until SUCCEEDED, then download each
``output.results[].url`` (signed OSS links valid for about a day; ``parameters.n`` asks for
several pictures in one task or call). wan2.6 and the qwen-image family answer one synchronous
call on the multimodal-generation endpoint with the result's URL. The size asked for is the one
the family takes nearest the wanted size (``sizes.SizeRule.fit``); DASHSCOPE_NEGATIVE_PROMPT,
DASHSCOPE_PROMPT_EXTEND and DASHSCOPE_WATERMARK are sent as each family takes them.

Editing: the qwen-image-edit family answers synchronously on
``POST /api/v1/services/aigc/multimodal-generation/generation`` (``input.messages``, the picture as
a ``data:`` URI; the result in ``output.choices[0].message.content[].image``); wanx2.1-imageedit is
a task on ``/api/v1/services/aigc/image2image/image-synthesis`` (``function: description_edit``,
``base_image_url`` a ``data:`` URI), polled like drawing. Data URIs mean the user's picture never
needs a public URL.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any

from pydantic import SecretStr

from imgbot.errors import GeneratorError, GeneratorTimeout
from imgbot.generators.base import PartlyRefused
from imgbot.generators.dashscope_models import SYNC_PATH, TASK_PATH, family_of
from imgbot.generators.http import HttpLimits, ProviderFault, ProviderHttp
from imgbot.models import EditSpec, GeneratedImage, Size
from imgbot.observe import Observer

log = logging.getLogger(__name__)

EDIT_TASK_PATH = "/api/v1/services/aigc/image2image/image-synthesis"
# qwen-image-edit (-plus, -max): JPG/PNG/BMP/TIFF/WebP, 384-3072 px a side, at most 10 MB.
QWEN_EDIT = EditSpec(min_side=384, max_side=3072, max_bytes=10 * 1024 * 1024, format="JPEG")
# wanx2.1-imageedit: the same formats, 512-4096 px a side, at most 10 MB.
WANX_EDIT = EditSpec(min_side=512, max_side=4096, max_bytes=10 * 1024 * 1024, format="JPEG")
POLL_PATH = "/api/v1/tasks/{task_id}"
_WAITING = frozenset({"PENDING", "RUNNING"})
_MODERATION_CODES = frozenset({"DataInspectionFailed", "IPInfringementSuspect"})
_MODERATION_WORDS = ("inappropriate content", "sensitive", "infringement")


def dashscope_fault(document: Any) -> ProviderFault:
    """The code and message of a DashScope error answer, failed task or failed result."""
    if not isinstance(document, dict):
        return ProviderFault("", "")
    output = document.get("output")
    source = output if isinstance(output, dict) and output.get("code") else document
    return ProviderFault(str(source.get("code") or ""), str(source.get("message") or ""))


def is_moderated(fault: ProviderFault) -> bool:
    """True when DashScope refused the prompt or the picture for its content."""
    message = fault.message.lower()
    return fault.code in _MODERATION_CODES or any(w in message for w in _MODERATION_WORDS)


def _result_url(result: object) -> str | None:
    """A task result's picture URL; None for a result without one (refused or failed)."""
    url = result.get("url") if isinstance(result, dict) else None
    return url if isinstance(url, str) and url else None


def is_task_edit(model: str) -> bool:
    """True for the wanx image-edit models, which run as tasks (the qwen ones answer at once)."""
    return model.startswith("wanx") and "imageedit" in model


class DashScopeGenerator:
    """Draws with a DashScope wan or qwen-image text-to-image model, one picture per prompt."""

    name = "dashscope"

    def __init__(
        self,
        *,
        api_key: SecretStr,
        base_url: str,
        model: str,
        limits: HttpLimits,
        edit_model: str = "qwen-image-edit",
        negative_prompt: str = "",
        prompt_extend: bool = True,
        watermark: bool = False,
        poll_interval: float = 0.5,
        max_poll_interval: float = 3.0,
        observer: Observer | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self.model = model
        self.edit_model = edit_model
        self._family = family_of(model)
        self._negative_prompt = negative_prompt
        self._options = {"prompt_extend": prompt_extend, "watermark": watermark}
        self.edits: EditSpec | None = WANX_EDIT if is_task_edit(edit_model) else QWEN_EDIT
        self.max_n = self._family.most
        self._limits = limits
        self._poll_interval = poll_interval
        self._max_poll_interval = max_poll_interval
        self._http = ProviderHttp(
            self.name,
            limits,
            api_key=api_key,
            fault_of=dashscope_fault,
            moderated=is_moderated,
            trusted_origin=base_url,
            observer=observer,
        )

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        """Ask for one picture of the size the model takes nearest ``size``; download it."""
        return (await self.generate_many(prompt, size, 1))[0]

    async def generate_many(self, prompt: str, size: Size, n: int) -> list[GeneratedImage]:
        """Ask for ``n`` pictures (``parameters.n``) of the size the model takes nearest
        ``size``, in one task or call; download each result that has a picture, in turn."""
        started = time.monotonic()
        asked = self._family.sizes.fit(size)
        parameters: dict[str, Any] = {"size": f"{asked.width}*{asked.height}", "n": n}
        parameters.update(self._options)
        if self._family.task:
            given: dict[str, Any] = {"prompt": prompt}
            if self._negative_prompt:
                given["negative_prompt"] = self._negative_prompt
            body = {"model": self.model, "input": given, "parameters": parameters}
            task_id = await self._submit(TASK_PATH, body, f"model {self.model}, {asked}, n={n}")
            urls, refused = await self._wait(task_id, started, n)
        else:
            if self._negative_prompt:
                parameters["negative_prompt"] = self._negative_prompt
            log.info("dashscope %s: asking for %s, n=%d", self.model, asked, n)
            message = self._message([{"text": prompt}])
            urls = (await self._at_once(self.model, message, parameters))[:n]
            refused = None
        images = [GeneratedImage(data=await self._http.download(url)) for url in urls]
        log.info(
            "dashscope %s: %d picture(s), %d bytes (%s) in %.1f s",
            self.model,
            len(images),
            sum(len(image.data) for image in images),
            asked,
            time.monotonic() - started,
        )
        if refused is not None:
            raise PartlyRefused(str(refused), images, reason=refused.reason)
        return images

    async def edit(self, picture: bytes, instruction: str, size: Size) -> GeneratedImage:
        """Edit ``picture`` (a JPEG fitted to ``edits``) with DASHSCOPE_EDIT_MODEL; download it."""
        started = time.monotonic()
        image = "data:image/jpeg;base64," + base64.b64encode(picture).decode("ascii")
        if is_task_edit(self.edit_model):
            body = {
                "model": self.edit_model,
                "input": {
                    "function": "description_edit",
                    "prompt": instruction,
                    "base_image_url": image,
                },
                "parameters": {"n": 1},
            }
            task_id = await self._submit(EDIT_TASK_PATH, body, f"edit, model {self.edit_model}")
            url = (await self._wait(task_id, started, 1))[0][0]
        else:
            content = [{"image": image}, {"text": instruction}]
            url = (await self._at_once(self.edit_model, self._message(content)))[0]
        data = await self._http.download(url)
        log.info(
            "dashscope edit %s: %d bytes in %.1f s",
            self.edit_model,
            len(data),
            time.monotonic() - started,
        )
        return GeneratedImage(data=data)

    def _message(self, content: list[dict[str, str]]) -> dict[str, Any]:
        """``input`` of a synchronous call: one user message of ``content``."""
        return {"messages": [{"role": "user", "content": content}]}

    async def _at_once(
        self, model: str, given: dict[str, Any], parameters: dict[str, Any] | None = None
    ) -> list[str]:
        """One synchronous call (qwen-image-edit with an image; wan2.6 and qwen-image drawing
        with ``parameters``); returns the results' URLs, at least one."""
        body: dict[str, Any] = {"model": model, "input": given}
        if parameters is not None:
            body["parameters"] = parameters
        # The answer comes when the picture is done: this one call may take the whole budget.
        answer = await self._http.call_json(
            "POST", self._base + SYNC_PATH, body=body, call_timeout=self._limits.total_timeout
        )
        output = answer.get("output") if isinstance(answer, dict) else None
        choices = output.get("choices") if isinstance(output, dict) else None
        urls: list[str] = []
        for choice in choices if isinstance(choices, list) else []:
            message = choice.get("message") if isinstance(choice, dict) else None
            parts = message.get("content") if isinstance(message, dict) else None
            for part in parts if isinstance(parts, list) else []:
                url = part.get("image") if isinstance(part, dict) else None
                if isinstance(url, str) and url:
                    urls.append(url)
        if not urls:
            raise self._http.error(dashscope_fault(answer), "answered without a picture")
        return urls

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.aclose()

    async def _submit(self, path: str, body: dict[str, Any], what: str) -> str:
        answer = await self._http.call_json(
            "POST", self._base + path, body=body, headers={"X-DashScope-Async": "enable"}
        )
        output = answer.get("output") if isinstance(answer, dict) else None
        task_id = output.get("task_id") if isinstance(output, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise self._http.error(dashscope_fault(answer), "answered without a task id")
        log.info("dashscope task %s submitted (%s)", task_id, what)
        return task_id

    async def _wait(
        self, task_id: str, started: float, n: int
    ) -> tuple[list[str], GeneratorError | None]:
        """Poll the task with a growing interval; once it SUCCEEDED, return up to ``n`` result
        URLs, and the moderation error of results refused for their content (None if none)."""
        interval = self._poll_interval
        url = self._base + POLL_PATH.format(task_id=task_id)
        while True:
            await asyncio.sleep(interval)
            answer = await self._http.call_json("GET", url)
            output = answer.get("output") if isinstance(answer, dict) else None
            status = output.get("task_status") if isinstance(output, dict) else None
            if status == "SUCCEEDED" and isinstance(output, dict):
                return self._result_urls(task_id, output, n)
            if status not in _WAITING:
                raise self._ended(task_id, status, answer)
            elapsed = time.monotonic() - started
            if elapsed > self._limits.total_timeout:
                raise GeneratorTimeout(
                    f"dashscope task {task_id} still {status} after {elapsed:.0f} s",
                    reason="timeout",
                )
            interval = min(interval * 1.5, self._max_poll_interval)

    def _result_urls(
        self, task_id: str, output: dict[str, Any], n: int
    ) -> tuple[list[str], GeneratorError | None]:
        results = output.get("results")
        items = results[:n] if isinstance(results, list) else []
        found = [url for r in items if isinstance(url := _result_url(r), str)]
        # A result without a URL carries its own code and message (e.g. DataInspectionFailed).
        failed = [r for r in items if _result_url(r) is None]
        if not found:
            first = items[0] if items else None
            raise self._http.error(dashscope_fault(first), f"task {task_id} returned no picture")
        if failed:
            log.warning(
                "dashscope task %s: %d of %d results without a picture",
                task_id,
                len(failed),
                len(items),
            )
        errors = [self._http.error(dashscope_fault(r), f"task {task_id}") for r in failed]
        refused = next((error for error in errors if error.moderated), None)
        return found, refused

    def _ended(self, task_id: str, status: object, answer: Any) -> GeneratorError:
        if status == "FAILED":
            return self._http.error(dashscope_fault(answer), f"task {task_id} failed")
        if status == "CANCELED":
            return GeneratorError(f"dashscope task {task_id} was canceled", reason="canceled")
        if status == "UNKNOWN":
            return GeneratorError(
                f"dashscope task {task_id} is unknown (expired or never created)",
                reason="unknown task",
            )
        shown = self._http.clean(str(status))
        return GeneratorError(
            f"dashscope task {task_id} has unexpected status {shown}", reason="unexpected status"
        )
