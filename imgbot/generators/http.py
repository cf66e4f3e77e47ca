"""HTTP plumbing the remote generators share: one session, bounded retries, capped downloads.

Every provider failure leaves here as one ``GeneratorError`` whose message is a single safe line:
the provider's name and its own code and message, with secrets and URL query strings removed.
Only 429, 5xx and network errors are retried; 4xx answers are final on the first attempt.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp
from pydantic import SecretStr

from imgbot.errors import GeneratorError, GeneratorTimeout
from imgbot.net import retry
from imgbot.net.capped_body import read_upto
from imgbot.net.http_session import LazySession
from imgbot.observe import NoObserver, Observer

log = logging.getLogger(__name__)

_ERROR_BODY_BYTES = 64 * 1024
_MAX_RETRY_AFTER = 10.0
"""The longest wait a 429's Retry-After may ask for; asked for more, the call fails at once."""
_MESSAGE_CHARS = 200
MAX_REDIRECTS = 3
_URL_WITH_QUERY = re.compile(r"(https?://[^\s?#\"'<>]+)[?#][^\s\"'<>]*")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Timeouts, sizes and attempts that one generator's HTTP calls keep to."""

    call_timeout: float
    """One request, including reading its body."""
    total_timeout: float
    """All attempts of one call together; the pipeline also bounds the whole generation."""
    max_bytes: int
    """Largest image accepted from the provider."""
    attempts: int
    """Attempts of one call when the provider answers 429, 5xx or the network fails."""


@dataclass(frozen=True, slots=True)
class ProviderFault:
    """A provider's own account of a failure."""

    code: str
    message: str
    kind: str = ""


FaultParser = Callable[[Any], ProviderFault]
ModerationCheck = Callable[[ProviderFault], bool]


def _transient(exc: BaseException) -> bool:
    # Connection and payload failures may pass; bad URLs and redirects will not, so fail at once.
    network = aiohttp.ClientConnectionError | aiohttp.ClientPayloadError
    return retry.retryable(exc) or isinstance(exc, network | TimeoutError)


HostOrigin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> HostOrigin | None:
    """``url``'s scheme, host and port (default port filled in), or None when it has none."""
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname, port


def safe_url(url: str) -> str:
    """``url`` without its query string or fragment, for logs and messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class ProviderHttp:
    """One aiohttp session for one generator; JSON calls carry the key, downloads never do."""

    def __init__(
        self,
        provider: str,
        limits: HttpLimits,
        *,
        api_key: SecretStr,
        fault_of: FaultParser,
        moderated: ModerationCheck,
        trusted_origin: str | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.provider = provider
        self._observer = observer or NoObserver()
        self._trusted = origin_of(trusted_origin) if trusted_origin else None
        self.limits = limits
        self._api_key = api_key
        self._fault_of = fault_of
        self._moderated = moderated
        # Made on first use, so it belongs to the loop that runs the generation.
        self._client = LazySession()

    async def call_json(
        self,
        method: str,
        url: str,
        *,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        call_timeout: float | None = None,
        pictures: int = 1,
    ) -> Any:
        """Send an authorized request and return the decoded JSON answer.

        ``call_timeout`` replaces the limits' one for a call known to take long (a synchronous
        edit); ``pictures`` is how many base64 pictures the answer may hold (the API's ``n``).
        """
        sent = {"Authorization": f"Bearer {self._api_key.get_secret_value()}", **(headers or {})}
        if body is None:
            return await self._retried(
                url, lambda: self._call_once(method, url, {}, sent, call_timeout, pictures=pictures)
            )
        # Encoded once; each attempt reads it through its own stream (a picture as a data: URI
        # makes a body of megabytes, which aiohttp wants as a stream rather than raw bytes).
        encoded = json.dumps(body, ensure_ascii=False).encode("utf-8")
        sent["Content-Type"] = "application/json"
        return await self._retried(
            url,
            lambda: self._call_once(
                method, url, {"data": io.BytesIO(encoded)}, sent, call_timeout, pictures=pictures
            ),
        )

    async def call_form(self, url: str, form: Callable[[], aiohttp.FormData]) -> Any:
        """POST an authorized multipart form and return the decoded JSON answer.

        ``form`` builds the form afresh for each attempt (aiohttp sends a FormData only once).
        """
        sent = {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}
        return await self._retried(
            url, lambda: self._call_once("POST", url, {"data": form()}, sent, None)
        )

    async def download(self, url: str) -> bytes:
        """Fetch a result URL (http or https only), refusing more than ``max_bytes``."""
        self._check_scheme(url, "returned a result URL")
        return await self._retried(url, lambda: self._download_once(url))

    def _check_scheme(self, url: str, what: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            scheme = parts.scheme or "no scheme"
            raise GeneratorError(
                f"{self.provider} {what} that is not http(s) ({scheme}); refused",
                reason="result URL is not http(s)",
            )

    async def _check_address(self, url: str) -> None:
        """Refuse result hosts on loopback, private or link-local addresses (internal services,
        cloud metadata), unless the URL is on the provider's own configured origin: the same
        scheme, host and port (another port of that host may be another service)."""
        if self._trusted is not None and origin_of(url) == self._trusted:
            return
        host = urlsplit(url).hostname or ""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            raise GeneratorError(
                f"{self.provider} result host {host} does not resolve", reason="bad result host"
            ) from None
        if any(not ipaddress.ip_address(info[4][0]).is_global for info in infos):
            raise GeneratorError(
                f"{self.provider} result URL points to an internal address ({host}); refused",
                reason="result URL points to an internal address",
            )

    def error(self, fault: ProviderFault, context: str) -> GeneratorError:
        """One safe GeneratorError for ``fault``; ``context`` says where it happened."""
        reason = self.clean(fault.message or fault.code or "no message")
        code = self.clean(fault.code)
        text = f"{code}: {reason}" if code and code != reason else reason
        return GeneratorError(
            f"{self.provider} {context}: {text}", reason=reason, moderated=self._moderated(fault)
        )

    def clean(self, text: str) -> str:
        """``text`` on one line, without the key or URL query strings, at most ~200 chars."""
        line = " ".join(text.split())
        secret = self._api_key.get_secret_value()
        if secret:
            line = line.replace(secret, "***")
        line = _URL_WITH_QUERY.sub(r"\1?…", line)
        return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 1] + "…"

    async def aclose(self) -> None:
        """Close the session."""
        await self._client.aclose()

    async def _retried(self, url: str, once: Callable[[], Awaitable[T]]) -> T:
        policy = retry.RetryPolicy(
            attempts=self.limits.attempts,
            timeout=self.limits.total_timeout,
            max_wait=_MAX_RETRY_AFTER,
        )
        try:
            return await retry.call(
                once,
                policy=policy,
                retry_on=_transient,
                what=self.provider,
                observer=self._observer,
            )
        except TimeoutError:
            raise GeneratorTimeout(
                f"{self.provider}: no answer from {safe_url(url)} "
                f"within {self.limits.call_timeout:g} s",
                reason="timeout",
            ) from None
        except aiohttp.ClientError as exc:
            raise GeneratorError(
                f"{self.provider}: network error talking to {urlsplit(url).netloc}: "
                f"{type(exc).__name__}",
                reason=type(exc).__name__,
            ) from exc

    def _timeout(self, seconds: float | None = None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=seconds or self.limits.call_timeout)

    async def _call_once(
        self,
        method: str,
        url: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str],
        call_timeout: float | None,
        *,
        pictures: int = 1,
    ) -> Any:
        # No redirects: the Authorization header must reach the provider's host and no other.
        async with self._client().request(
            method,
            url,
            **payload,
            headers=headers,
            timeout=self._timeout(call_timeout),
            allow_redirects=False,
        ) as answer:
            if not 200 <= answer.status < 300:
                await self._raise_for(answer, "answered", keyed=True)
            # A base64 image inflates by 4/3 inside JSON; twice the image cap bounds each picture.
            cap = 2 * self.limits.max_bytes * pictures + _ERROR_BODY_BYTES
            raw, complete = await read_upto(answer, cap)
        if not complete:
            raise GeneratorError(
                f"{self.provider}: answer is more than {cap} bytes, too large for "
                f"the image limit of {self.limits.max_bytes} bytes",
                reason="answer too large",
            )
        try:
            return json.loads(raw)
        except ValueError:
            raise GeneratorError(
                f"{self.provider}: answer from {safe_url(url)} is not JSON",
                reason="answer is not JSON",
            ) from None

    async def _download_once(self, url: str) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            await self._check_address(url)
            async with self._client().get(
                url, timeout=self._timeout(), allow_redirects=False
            ) as answer:
                location = answer.headers.get("Location")
                if answer.status in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    self._check_scheme(url, "redirected the result to a URL")
                    continue
                return await self._read_result(answer, url)
        raise GeneratorError(
            f"{self.provider} result download redirected too often", reason="too many redirects"
        )

    async def _read_result(self, answer: aiohttp.ClientResponse, url: str) -> bytes:
        if not 200 <= answer.status < 300:
            context = f"result download from {safe_url(url)} failed"
            await self._raise_for(answer, context, keyed=False)
        limit = self.limits.max_bytes
        if answer.content_length is not None and answer.content_length > limit:
            raise self._too_large(answer.content_length)
        data, complete = await read_upto(answer, limit)
        if not complete:
            raise self._too_large(None)
        log.debug("%s: downloaded %d bytes from %s", self.provider, len(data), safe_url(url))
        return data

    def _too_large(self, declared: int | None) -> GeneratorError:
        size = f"{declared} bytes" if declared is not None else "larger"
        return GeneratorError(
            f"{self.provider}: result image is {size}, more than the limit of "
            f"{self.limits.max_bytes} bytes",
            reason="result image too large",
        )

    async def _raise_for(
        self, answer: aiohttp.ClientResponse, context: str, *, keyed: bool
    ) -> None:
        raw, _ = await read_upto(answer, _ERROR_BODY_BYTES)
        fault = self._parse_fault(raw, answer)
        status = answer.status
        if keyed and status in (401, 403):
            raise self.error(fault, f"rejected the API key (HTTP {status})")
        if status == 429 or status >= 500:
            # INFO, not WARNING: the CLI shows warnings, and a failure must stay one line there.
            log.info(
                "%s answered HTTP %d (%s) on %s; retrying while attempts remain",
                self.provider,
                status,
                self.clean(fault.code),
                safe_url(str(answer.url)),
            )
            error = self.error(fault, f"{context} (HTTP {status})")
            wait = self._retry_after(answer) if status == 429 else None
            raise GeneratorError(str(error), reason=error.reason, retryable=True, retry_after=wait)
        raise self.error(fault, f"{context} (HTTP {status})")

    def _parse_fault(self, raw: bytes, answer: aiohttp.ClientResponse) -> ProviderFault:
        try:
            fault = self._fault_of(json.loads(raw))
        except ValueError:
            fault = ProviderFault("", "")
        if fault.code or fault.message:
            return fault
        return ProviderFault("", answer.reason or f"HTTP {answer.status}")

    def _retry_after(self, answer: aiohttp.ClientResponse) -> float:
        """Seconds a 429 asks us to wait (delta-seconds form only), bounded."""
        try:
            wanted = float(answer.headers.get("Retry-After", "0"))
        except ValueError:
            return 0.0
        # Not bounded here: the retry policy gives up at once on a wait longer than it allows.
        return max(0.0, wanted)
