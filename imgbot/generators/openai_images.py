"""Any OpenAI-compatible images API: ``POST {base}/images/generations`` draws, one picture per
prompt; ``POST {base}/images/edits`` (multipart) edits a user's picture.

``response_format`` is never sent (some models reject it); the answer may carry the picture as
``data[0].b64_json`` (GPT image models always do) or as a ``data[0].url`` to download (dall-e-2).
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import time
from typing import Any

import aiohttp
from pydantic import SecretStr

from imgbot.errors import GeneratorError
from imgbot.generators.http import HttpLimits, ProviderFault, ProviderHttp
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
_GPT_IMAGE_SIZES = {"square": "1024x1024", "landscape": "1536x1024", "portrait": "1024x1536"}


def edit_spec(model: str) -> EditSpec:
    """What ``model``'s edit endpoint takes as its picture."""
    return _DALL_E_2 if model == "dall-e-2" else _ANY_MODEL


def edit_size(model: str, size: Size) -> str | None:
    """The ``size`` field to send for an edit of a ``size`` picture, or None to leave it out.

    dall-e-2 answers a square; GPT image models take three sizes, the nearest aspect is chosen;
    other compatible models get none, so they keep the picture's own size.
    """
    if model == "dall-e-2":
        return "1024x1024"
    if model.startswith("gpt-image"):
        if size.width > size.height * 1.2:
            return _GPT_IMAGE_SIZES["landscape"]
        if size.height > size.width * 1.2:
            return _GPT_IMAGE_SIZES["portrait"]
        return _GPT_IMAGE_SIZES["square"]
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
        observer: Observer | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/images/generations"
        self._edit_url = base_url.rstrip("/") + "/images/edits"
        self.model = model
        self.edit_model = edit_model or model
        self.edits: EditSpec | None = edit_spec(self.edit_model)
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
        """Ask for one picture and return its bytes, decoded or downloaded."""
        started = time.monotonic()
        body = {"model": self.model, "prompt": prompt, "size": str(size), "n": 1}
        answer = await self._http.call_json("POST", self._url, body=body)
        data = await self._picture(answer)
        log.info("openai %s: %d bytes in %.1f s", self.model, len(data), time.monotonic() - started)
        return GeneratedImage(data=data)

    async def edit(self, picture: bytes, instruction: str, size: Size) -> GeneratedImage:
        """Send ``picture`` (fitted to ``edits``, a PNG) and the instruction; return the result."""
        started = time.monotonic()
        wanted = edit_size(self.edit_model, size)
        # OpenAI's own examples send GPT image models their pictures as image[] (several allowed).
        field = "image[]" if self.edit_model.startswith("gpt-image") else "image"

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
        data_list = answer.get("data") if isinstance(answer, dict) else None
        first = data_list[0] if isinstance(data_list, list) and data_list else None
        item: dict[str, Any] = first if isinstance(first, dict) else {}
        encoded, url = item.get("b64_json"), item.get("url")
        if isinstance(encoded, str) and encoded:
            return self._decode(encoded)
        if isinstance(url, str) and url:
            return await self._http.download(url)
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
