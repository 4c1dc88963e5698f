"""WappiClient: every call the gateway makes to Wappi (WhatsApp), with retries and typed answers."""

import asyncio
import base64
import binascii
import re
import time
from typing import Any

import httpx
from loguru import logger
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from services.wappi_models import (
    Chat,
    MediaFile,
    ProfileStatus,
    SendResult,
    WappiMessage,
    parse_chat,
    parse_messages,
)
from utils.metrics import GatewayMetrics

TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}
# Wappi requests in flight at once; more wait on a semaphore, not in httpcore's pool, whose queue costs
# CPU that grows with its length (every waiting request is checked each time a connection frees up).
MAX_CONNECTIONS = 8
# media/download answers the audio as base64 inside JSON: this much room for the rest of the answer.
JSON_ENVELOPE_BYTES = 64 * 1024
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")


class WappiError(Exception):
    """A failed Wappi call: `status` is the HTTP status (None when no answer came), `transient` says
    whether trying again later can help, `maybe_done` that Wappi may have carried the request out all
    the same (it reached Wappi, the answer did not reach us): a send must not simply be repeated."""

    def __init__(
        self, endpoint: str, status: int | None, detail: str, *, transient: bool, maybe_done: bool = False
    ):
        super().__init__(
            f"Wappi {endpoint} failed ({status if status is not None else 'no answer'}): {detail}"
        )
        self.endpoint = endpoint
        self.status = status
        self.detail = detail
        self.transient = transient
        self.maybe_done = maybe_done


class VoiceTooLarge(Exception):
    """The audio is bigger than the gateway takes in (MAX_VOICE_BYTES): it was not read whole."""

    def __init__(self, limit: int):
        super().__init__(f"the audio is larger than {limit} bytes")
        self.limit = limit


# The request never left: repeating it cannot do anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _detail(response: httpx.Response) -> tuple[str, Any]:
    """The answer's JSON (or None) and a short human-readable detail of what came back."""
    try:
        data = response.json()
    except ValueError:
        kind = response.headers.get("content-type", "unknown type")
        text = _SPACES.sub(" ", _TAGS.sub(" ", response.text)).strip()[:200]
        return f"non-JSON answer ({kind}): {text or '<empty>'}", None
    if isinstance(data, dict):
        detail = data.get("detail") or data.get("message") or data.get("error") or data.get("status")
        return str(detail)[:300], data
    return str(data)[:300], data


def _list_in(data: dict[str, Any], endpoint: str, *keys: str) -> list[Any]:
    """The answer's list under the first of `keys` present; an answer without one is not understood
    (and must not pass for "nothing new", which would move the poller's cursors past unread messages)."""
    for key in keys:
        if key in data:
            value = data[key]
            if isinstance(value, list):
                return value
            if value is None:
                return []
            break
    shape = ", ".join(f"{k}: {type(v).__name__}" for k, v in list(data.items())[:8]) or "empty object"
    raise WappiError(endpoint, 200, f"unexpected answer ({shape})", transient=True, maybe_done=True)


class WappiClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        profile_id: str,
        metrics: GatewayMetrics,
        timeout: float = 15.0,
        attempts: int = 4,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        retry_budget: float = 30.0,
    ):
        self._token = token
        self._profile_id = profile_id
        self._metrics = metrics
        # The read timeout stays well above slow answers: a send that times out may have gone out anyway.
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
        )
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._attempts = attempts
        self._backoff = (backoff_initial, backoff_max)
        self._retry_budget = retry_budget
        # Wappi has mixed up files of concurrent downloads on one profile: download one at a time.
        self._download_lock = asyncio.Lock()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call_once(
        self, endpoint: str, method: str, path: str, params: dict, json: Any, max_bytes: int | None
    ) -> Any:
        await self._slots.acquire()
        started = time.perf_counter()
        try:
            request = self._http.build_request(
                method,
                path,
                params={"profile_id": self._profile_id, **params},
                json=json,
                headers={"Authorization": self._token},
            )
            response = await _send_capped(self._http, request, max_bytes)
        except httpx.TransportError as exc:
            # Only the exception's type: its text can carry the URL, and we add nothing a reader needs.
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
            raise WappiError(
                endpoint,
                None,
                f"{what} ({type(exc).__name__})",
                transient=True,
                maybe_done=not isinstance(exc, _NOT_SENT),
            ) from exc
        finally:
            self._slots.release()
            self._metrics.wappi_latency.labels(endpoint).observe(time.perf_counter() - started)
        detail, data = _detail(response)
        status = response.status_code
        if status >= 400:
            raise WappiError(
                endpoint,
                status,
                detail,
                transient=status in TRANSIENT_STATUSES or status >= 500,
                maybe_done=status == 504,  # a proxy gave up waiting for Wappi, which may have finished
            )
        if not isinstance(data, dict):
            # An HTML page (or any non-object) with 200 is not one of Wappi's answers: worth another try,
            # though whatever stood in front of Wappi may have passed the request on.
            what = detail if data is None else f"unexpected answer: {detail}"
            raise WappiError(endpoint, status, what, transient=True, maybe_done=True)
        if data.get("status") == "error":
            raise WappiError(endpoint, status, detail, transient=False)
        return data

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        retry: bool = True,
        repeatable: bool = True,
        max_bytes: int | None = None,
    ) -> Any:
        """One Wappi call with retries; a call that is not `repeatable` (a send) is not repeated when
        it may have been carried out: the caller decides what to do about that. An answer longer than
        `max_bytes` is not read further (VoiceTooLarge)."""

        def worth_retrying(exc: BaseException) -> bool:
            return isinstance(exc, WappiError) and exc.transient and (repeatable or not exc.maybe_done)

        retrying = AsyncRetrying(
            retry=retry_if_exception(worth_retrying),
            stop=stop_after_attempt(self._attempts if retry else 1) | stop_after_delay(self._retry_budget),
            wait=self._wait(),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._call_once(endpoint, method, path, params or {}, json, max_bytes)
        except WappiError as exc:
            self._metrics.wappi_errors.labels(endpoint, "transient" if exc.transient else "permanent").inc()
            raise
        raise AssertionError("unreachable")

    def _wait(self):
        initial, longest = self._backoff
        return wait_exponential_jitter(initial=initial, max=longest, jitter=initial)

    async def get_status(self, *, retry: bool = True) -> ProfileStatus:
        data = await self._call("get/status", "GET", "/api/sync/get/status", retry=retry)
        authorized = data.get("authorized")
        app_status = data.get("app_status")
        app_status = str(app_status)[:100] if app_status is not None else None
        return ProfileStatus(authorized=authorized is True or app_status == "open", app_status=app_status)

    async def list_chats(self, *, limit: int = 100, offset: int = 0) -> list[Chat]:
        data = await self._call(
            "chats/get", "GET", "/api/sync/chats/get", params={"limit": limit, "offset": offset}
        )
        items = _list_in(data, "chats/get", "dialogs", "chats")
        return [chat for chat in (parse_chat(i) for i in items if isinstance(i, dict)) if chat]

    async def get_messages(
        self, chat_id: str, *, limit: int = 50, offset: int = 0, order: str = "desc"
    ) -> list[WappiMessage]:
        params = {"chat_id": chat_id, "limit": limit, "offset": offset, "order": order}
        data = await self._call("messages/get", "GET", "/api/sync/messages/get", params=params)
        items = _list_in(data, "messages/get", "messages")
        messages = parse_messages(items)
        if items and not messages:
            # A page of nothing but garbage is a broken answer, not a chat without news.
            raise WappiError("messages/get", 200, "no readable message in the answer", transient=True)
        return messages

    async def get_message(self, message_id: str) -> WappiMessage | None:
        """One message by id (None when Wappi's answer holds no readable message)."""
        data = await self._call(
            "messages/id/get", "GET", "/api/sync/messages/id/get", params={"message_id": message_id}
        )
        message = data.get("message")
        found = parse_messages([message]) if isinstance(message, dict) else []
        return found[0] if found else None

    @staticmethod
    def _sent(data: Any) -> SendResult:
        nested = data.get("message") if isinstance(data.get("message"), dict) else {}
        found = [data.get("message_id"), data.get("id"), nested.get("id")]
        message_id = next((v for v in found if isinstance(v, str | int) and v is not True and v), None)
        status = data.get("status")
        return SendResult(
            message_id=str(message_id)[:255] if message_id else None,
            status=status[:50] if isinstance(status, str) else "",
        )

    async def send_text(self, recipient: str, body: str) -> SendResult:
        data = await self._call(
            "message/send",
            "POST",
            "/api/sync/message/send",
            json={"recipient": recipient, "body": body},
            repeatable=False,
        )
        return self._sent(data)

    async def reply(self, message_id: str, body: str) -> SendResult:
        data = await self._call(
            "message/reply",
            "POST",
            "/api/sync/message/reply",
            json={"body": body, "message_id": message_id},
            repeatable=False,
        )
        return self._sent(data)

    async def mark_read(self, message_id: str) -> None:
        await self._call(
            "message/mark/read", "POST", "/api/sync/message/mark/read", json={"message_id": message_id}
        )

    async def download_voice(self, message_id: str, file_link: str | None, *, max_bytes: int) -> MediaFile:
        """The audio of a voice message: its file_link first, Wappi's media/download as the fallback.
        Streamed: audio over `max_bytes` is never held whole in memory (VoiceTooLarge)."""
        async with self._download_lock:
            if file_link:
                try:
                    return await self._fetch_file_link(file_link, max_bytes)
                except WappiError as exc:
                    logger.warning(
                        "file_link download of {} failed, trying media/download: {}", message_id, exc
                    )
            data = await self._call(
                "media/download",
                "GET",
                "/api/sync/message/media/download",
                params={"message_id": message_id},
                max_bytes=_base64_length(max_bytes) + JSON_ENVELOPE_BYTES,
            )
            try:
                audio = base64.b64decode(data.get("file_data") or "", validate=False)
            except (binascii.Error, ValueError) as exc:
                raise WappiError("media/download", 200, "file_data is not base64", transient=False) from exc
            if not audio:
                raise WappiError("media/download", 200, "no file_data in the answer", transient=False)
            if len(audio) > max_bytes:
                raise VoiceTooLarge(max_bytes)
            return MediaFile(data=audio, mime_type=data.get("mime_type"), file_name=data.get("file_name"))

    async def _fetch_file_link(self, url: str, max_bytes: int) -> MediaFile:
        # A signed storage URL: fetched without our token, which must not leave for another host.
        async def once() -> MediaFile:
            started = time.perf_counter()
            try:
                request = self._http.build_request("GET", url, timeout=httpx.Timeout(60.0, connect=5.0))
                response = await _send_capped(self._http, request, max_bytes)
            except httpx.HTTPError as exc:
                raise WappiError(
                    "files", None, f"download failed ({type(exc).__name__})", transient=True
                ) from exc
            finally:
                self._metrics.wappi_latency.labels("files").observe(time.perf_counter() - started)
            if response.status_code >= 400 or not response.content:
                status = response.status_code
                raise WappiError(
                    "files",
                    status,
                    f"download answered {status}",
                    transient=status in TRANSIENT_STATUSES or status >= 500,
                )
            mime = response.headers.get("content-type", "").split(";")[0] or None
            return MediaFile(
                data=response.content, mime_type=mime, file_name=url.rsplit("/", 1)[-1].split("?")[0]
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, WappiError) and e.transient),
            stop=stop_after_attempt(self._attempts) | stop_after_delay(self._retry_budget),
            wait=self._wait(),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await once()
        raise AssertionError("unreachable")


def _base64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


async def _send_capped(
    http: httpx.AsyncClient, request: httpx.Request, max_bytes: int | None
) -> httpx.Response:
    """The answer, read whole; with `max_bytes`, streamed and given up (VoiceTooLarge) once it is longer."""
    if max_bytes is None:
        return await http.send(request)
    response = await http.send(request, stream=True)
    try:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise VoiceTooLarge(max_bytes)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise VoiceTooLarge(max_bytes)
    finally:
        await response.aclose()
    # Decoded already (gzip and the like): the copy must not claim an encoding or a length it no longer has.
    headers = [(k, v) for k, v in response.headers.items() if k not in ("content-encoding", "content-length")]
    return httpx.Response(response.status_code, headers=headers, content=bytes(body), request=request)
