"""Any OpenAI-compatible images API: ``POST {base}/images/generations`` draws (``n`` pictures per
call for several); ``POST {base}/images/edits`` (multipart) edits a user's picture.

``response_format`` is never sent (GPT image models reject it); the answer may carry the picture
as ``data[0].b64_json`` (GPT image models always do) or as a ``data[0].url`` to download
(dall-e-2).

GPT image models (``gpt-image-*``; OpenAI serves gpt-image-2 since gpt-image-1 shut down on
2026-10-23 and gpt-image-1-mini and gpt-image-1.5 on 2026-12-01) take 1024x1024, 1536x1024 and
1024x1536: the one nearest the wanted aspect is asked for. Drawings and edits alike ask them for
OPENAI_IMAGE_QUALITY, OPENAI_OUTPUT_FORMAT and (for jpeg and webp) OPENAI_OUTPUT_COMPRESSION: a
JPEG answer is several times lighter than the PNG default, in the answer and in storage.

dall-e-2 (retired by OpenAI on 2026-05-12) keeps its own shapes for OpenAI-compatible servers that
still serve it: squares of 256, 512 or 1024 px, one square PNG under 4 MB to edit, the ``image``
form field, answers that may be URLs, none of the GPT image options. Other models of compatible
servers get the wanted size itself (IMAGE_SIZE, or its area in the asked aspect) and nothing more.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from pydantic import SecretStr

from imgbot.errors import GeneratorError
from imgbot.generators.http import HttpLimits, ProviderFault, ProviderHttp
from imgbot.generators.sizes import SizeRule
from imgbot.models import EditSpec, GeneratedImage, Size
from imgbot.observe import Observer

log = logging.getLogger(__name__)

# data_inspection_failed: DashScope's refusal on its OpenAI-compatible endpoints.
_MODERATION_CODES = frozenset(
    {"content_policy_violation", "moderation_blocked", "data_inspection_failed"}
)
# dall-e-2 edits one square PNG under 4 MB into a square of 256, 512 or 1024 px.
_DALL_E_2 = EditSpec(min_side=256, max_side=1024, max_bytes=4 * 1024 * 1024 - 1, square=True)
# GPT image models take PNG, WebP or JPEG under 50 MB (25 MB in older documentation) and work at
# about 1.5 megapixels; compatible servers vary, so stay well inside all of them.
_ANY_MODEL = EditSpec(min_side=256, max_side=2048, max_bytes=10 * 1024 * 1024)
GPT_IMAGE_SIZES = SizeRule(sizes=(Size(1024, 1024), Size(1536, 1024), Size(1024, 1536)))
DALL_E_2_SIZES = SizeRule(sizes=(Size(256, 256), Size(512, 512), Size(1024, 1024)))
OTHER_SIZES = SizeRule(sides=(64, 4096))
"""What other models of compatible servers are asked for: the wanted size, within IMAGE_SIZE's
own bounds."""


def is_gpt_image(model: str) -> bool:
    """True for OpenAI's GPT image models (gpt-image-2, and the retired gpt-image-1 family)."""
    return model.startswith("gpt-image")


def size_rule(model: str) -> SizeRule:
    """The sizes ``model`` is asked for."""
    if is_gpt_image(model):
        return GPT_IMAGE_SIZES
    return DALL_E_2_SIZES if model == "dall-e-2" else OTHER_SIZES


def edit_spec(model: str) -> EditSpec:
    """What ``model``'s edit endpoint takes as its picture."""
    return _DALL_E_2 if model == "dall-e-2" else _ANY_MODEL


def edit_size(model: str, size: Size) -> str | None:
    """The ``size`` field to send for an edit of a ``size`` picture, or None to leave it out.

    dall-e-2 answers a 1024 px square; GPT image models take three sizes, the one nearest the
    picture's aspect is chosen; other compatible models get none, so they keep the picture's own
    size.
    """
    if model == "dall-e-2":
        return str(DALL_E_2_SIZES.sizes[-1])
    if is_gpt_image(model):
        return str(GPT_IMAGE_SIZES.fit(size))
    return None


def openai_fault(document: Any) -> ProviderFault:
    """The code, message and type of an OpenAI ``{"error": {...}}`` answer."""
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return ProviderFault("", "")
    kind = str(error.get("type") or "")
    return ProviderFault(str(error.get("code") or kind), str(error.get("message") or ""), kind)


def is_moderated(fault: ProviderFault) -> bool:
    """True when the provider's safety system refused the prompt or the picture."""
    words = f"{fault.kind} {fault.message}".lower()
    return fault.code in _MODERATION_CODES or "safety" in words


def max_n(model: str) -> int:
    """Most pictures one images call of ``model`` makes: dall-e-3 took ``n=1`` only; GPT image
    models and dall-e-2 take 1-10."""
    return 1 if model == "dall-e-3" else 10


class OpenAIImagesGenerator:
    """Draws with an OpenAI-compatible images model."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: SecretStr,
        base_url: str,
        model: str,
        limits: HttpLimits,
        edit_model: str = "",
        quality: str = "medium",
        output_format: str = "jpeg",
        output_compression: int = 90,
        observer: Observer | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/images/generations"
        self._gpt_options: dict[str, str | int] = {
            "quality": quality,
            "output_format": output_format,
        }
        if output_format != "png":  # only jpeg and webp take a compression level
            self._gpt_options["output_compression"] = output_compression
        self._edit_url = base_url.rstrip("/") + "/images/edits"
        self.model = model
        self.edit_model = edit_model or model
        self.edits: EditSpec | None = edit_spec(self.edit_model)
        self.max_n = max_n(model)
        self._limits = limits
        self._http = ProviderHttp(
            self.name,
            limits,
            api_key=api_key,
            fault_of=openai_fault,
            moderated=is_moderated,
            trusted_origin=base_url,
            observer=observer,
        )

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        """Ask for one picture of the size the model takes nearest ``size``; return its bytes,
        decoded or downloaded."""
        return (await self.generate_many(prompt, size, 1))[0]

    async def generate_many(self, prompt: str, size: Size, n: int) -> list[GeneratedImage]:
        """Ask for ``n`` pictures of the size the model takes nearest ``size`` in one call (the
        API's ``n``); return each, decoded or downloaded in turn."""
        started = time.monotonic()
        asked = size_rule(self.model).fit(size)
        body: dict[str, str | int] = {
            "model": self.model,
            "prompt": prompt,
            "size": str(asked),
            "n": n,
        }
        if is_gpt_image(self.model):
            body.update(self._gpt_options)
        answer = await self._http.call_json("POST", self._url, body=body, pictures=n)
        images = [GeneratedImage(data=data) async for data in self._pictures(answer, n)]
        log.info(
            "openai %s: %d picture(s), %d bytes (%s) in %.1f s",
            self.model,
            len(images),
            sum(len(image.data) for image in images),
            asked,
            time.monotonic() - started,
        )
        return images

    async def edit(self, picture: bytes, instruction: str, size: Size) -> GeneratedImage:
        """Send ``picture`` (fitted to ``edits``, a PNG) and the instruction; return the result."""
        started = time.monotonic()
        wanted = edit_size(self.edit_model, size)
        # OpenAI's own examples send GPT image models their pictures as image[] (several allowed).
        field = "image[]" if is_gpt_image(self.edit_model) else "image"

        def form() -> aiohttp.FormData:
            fields = aiohttp.FormData()
            # A stream, not bytes: aiohttp warns that a large bytes body may block the loop.
            stream = io.BytesIO(picture)
            fields.add_field(field, stream, filename="image.png", content_type="image/png")
            fields.add_field("prompt", instruction)
            fields.add_field("model", self.edit_model)
            fields.add_field("n", "1")
            if wanted:
                fields.add_field("size", wanted)
            if is_gpt_image(self.edit_model):
                for name, value in self._gpt_options.items():
                    fields.add_field(name, str(value))
            return fields

        answer = await self._http.call_form(self._edit_url, form)
        data = await self._picture(answer)
        log.info(
            "openai edit %s: %d bytes in %.1f s",
            self.edit_model,
            len(data),
            time.monotonic() - started,
        )
        return GeneratedImage(data=data)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.aclose()

    async def _picture(self, answer: Any) -> bytes:
        """The first picture of an images answer: decoded from b64_json, or downloaded."""
        first = [data async for data in self._pictures(answer, 1)]
        return first[0]

    async def _pictures(self, answer: Any, n: int) -> AsyncIterator[bytes]:
        """The first ``n`` pictures of an images answer, each decoded from b64_json or
        downloaded; raises when it holds none."""
        data_list = answer.get("data") if isinstance(answer, dict) else None
        items = data_list[:n] if isinstance(data_list, list) else []
        given = 0
        for entry in items:
            item: dict[str, Any] = entry if isinstance(entry, dict) else {}
            encoded, url = item.get("b64_json"), item.get("url")
            if isinstance(encoded, str) and encoded:
                given += 1
                yield self._decode(encoded)
            elif isinstance(url, str) and url:
                given += 1
                yield await self._http.download(url)
        if not given:
            raise self._http.error(openai_fault(answer), "answered without an image")

    def _decode(self, encoded: str) -> bytes:
        if len(encoded) // 4 * 3 > self._limits.max_bytes + 2:
            raise GeneratorError(
                f"openai: result image is larger than the limit of {self._limits.max_bytes} bytes",
                reason="result image too large",
            )
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise GeneratorError(
                "openai: b64_json in the answer is not valid base64", reason="bad base64"
            ) from None
