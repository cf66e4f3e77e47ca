"""Any OpenAI-compatible images API: ``POST {base}/images/generations``, one picture per prompt.

``response_format`` is never sent (some models reject it); the answer may carry the picture as
``data[0].b64_json`` or as a ``data[0].url`` to download.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any

from pydantic import SecretStr

from imgbot.errors import EditUnavailable, GeneratorError
from imgbot.generators.http import HttpLimits, ProviderFault, ProviderHttp
from imgbot.models import EditSpec, GeneratedImage, Size
from imgbot.observe import Observer

log = logging.getLogger(__name__)

_MODERATION_CODES = frozenset({"content_policy_violation", "moderation_blocked"})


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
        observer: Observer | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/images/generations"
        self.model = model
        self.edits: EditSpec | None = None
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
        data_list = answer.get("data") if isinstance(answer, dict) else None
        first = data_list[0] if isinstance(data_list, list) and data_list else None
        item: dict[str, Any] = first if isinstance(first, dict) else {}
        encoded, url = item.get("b64_json"), item.get("url")
        if isinstance(encoded, str) and encoded:
            data = self._decode(encoded)
        elif isinstance(url, str) and url:
            data = await self._http.download(url)
        else:
            raise self._http.error(openai_fault(answer), "answered without an image")
        log.info("openai %s: %d bytes in %.1f s", self.model, len(data), time.monotonic() - started)
        return GeneratedImage(data=data)

    async def edit(self, picture: bytes, instruction: str, size: Size) -> GeneratedImage:
        """Not available yet for this provider."""
        raise EditUnavailable(f"{self.name} cannot edit pictures yet", reason="cannot edit")

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.aclose()

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
