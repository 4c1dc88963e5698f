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
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")


class WappiError(Exception):
    """A failed Wappi call: `status` is the HTTP status (None when no answer came), `transient` says
    whether trying again later can help."""

    def __init__(self, endpoint: str, status: int | None, detail: str, *, transient: bool):
        super().__init__(
            f"Wappi {endpoint} failed ({status if status is not None else 'no answer'}): {detail}"
        )
        self.endpoint = endpoint
        self.status = status
        self.detail = detail
        self.transient = transient


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
        self._http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout, connect=5.0))
        self._attempts = attempts
        self._backoff = (backoff_initial, backoff_max)
        self._retry_budget = retry_budget
        # Wappi has mixed up files of concurrent downloads on one profile: download one at a time.
        self._download_lock = asyncio.Lock()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call_once(self, endpoint: str, method: str, path: str, params: dict, json: Any) -> Any:
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method,
                path,
                params={"profile_id": self._profile_id, **params},
                json=json,
                headers={"Authorization": self._token},
            )
        except httpx.TimeoutException as exc:
            raise WappiError(endpoint, None, f"timed out ({type(exc).__name__})", transient=True) from exc
        except httpx.TransportError as exc:
            raise WappiError(
                endpoint, None, f"connection failed ({type(exc).__name__})", transient=True
            ) from exc
        finally:
            self._metrics.wappi_latency.labels(endpoint).observe(time.perf_counter() - started)
        detail, data = _detail(response)
        status = response.status_code
        if status >= 400:
            raise WappiError(
                endpoint, status, detail, transient=status in TRANSIENT_STATUSES or status >= 500
            )
        if data is None:
            # An HTML page with 200 is a proxy or maintenance page in front of Wappi, not an answer.
            raise WappiError(endpoint, status, detail, transient=True)
        if not isinstance(data, dict):
            raise WappiError(endpoint, status, f"unexpected answer: {detail}", transient=False)
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
    ) -> Any:
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, WappiError) and e.transient),
            stop=stop_after_attempt(self._attempts if retry else 1) | stop_after_delay(self._retry_budget),
            wait=wait_exponential_jitter(initial=self._backoff[0], max=self._backoff[1]),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._call_once(endpoint, method, path, params or {}, json)
        except WappiError as exc:
            self._metrics.wappi_errors.labels(endpoint, "transient" if exc.transient else "permanent").inc()
            raise
        raise AssertionError("unreachable")

    async def get_status(self, *, retry: bool = True) -> ProfileStatus:
        data = await self._call("get/status", "GET", "/api/sync/get/status", retry=retry)
        authorized = data.get("authorized")
        app_status = data.get("app_status")
        return ProfileStatus(authorized=bool(authorized) or app_status == "open", app_status=app_status)

    async def list_chats(self, *, limit: int = 100, offset: int = 0) -> list[Chat]:
        data = await self._call(
            "chats/get", "GET", "/api/sync/chats/get", params={"limit": limit, "offset": offset}
        )
        items = data.get("dialogs") or data.get("chats") or []
        return [chat for chat in (parse_chat(i) for i in items if isinstance(i, dict)) if chat]

    async def get_messages(
        self, chat_id: str, *, limit: int = 50, offset: int = 0, order: str = "desc"
    ) -> list[WappiMessage]:
        params = {"chat_id": chat_id, "limit": limit, "offset": offset, "order": order}
        data = await self._call("messages/get", "GET", "/api/sync/messages/get", params=params)
        items = data.get("messages") or []
        return parse_messages(items)

    @staticmethod
    def _sent(data: Any) -> SendResult:
        nested = data.get("message") if isinstance(data.get("message"), dict) else {}
        message_id = data.get("message_id") or data.get("id") or nested.get("id")
        return SendResult(
            message_id=str(message_id) if message_id else None, status=str(data.get("status", ""))
        )

    async def send_text(self, recipient: str, body: str) -> SendResult:
        data = await self._call(
            "message/send", "POST", "/api/sync/message/send", json={"recipient": recipient, "body": body}
        )
        return self._sent(data)

    async def reply(self, message_id: str, body: str) -> SendResult:
        data = await self._call(
            "message/reply", "POST", "/api/sync/message/reply", json={"body": body, "message_id": message_id}
        )
        return self._sent(data)

    async def mark_read(self, message_id: str) -> None:
        await self._call(
            "message/mark/read", "POST", "/api/sync/message/mark/read", json={"message_id": message_id}
        )

    async def download_voice(self, message_id: str, file_link: str | None) -> MediaFile:
        """The audio of a voice message: its file_link first, Wappi's media/download as the fallback."""
        async with self._download_lock:
            if file_link:
                try:
                    return await self._fetch_file_link(file_link)
                except WappiError as exc:
                    logger.warning(
                        "file_link download of {} failed, trying media/download: {}", message_id, exc
                    )
            data = await self._call(
                "media/download", "GET", "/api/sync/message/media/download", params={"message_id": message_id}
            )
            try:
                audio = base64.b64decode(data.get("file_data") or "", validate=False)
            except (binascii.Error, ValueError) as exc:
                raise WappiError("media/download", 200, "file_data is not base64", transient=False) from exc
            if not audio:
                raise WappiError("media/download", 200, "no file_data in the answer", transient=False)
            return MediaFile(data=audio, mime_type=data.get("mime_type"), file_name=data.get("file_name"))

    async def _fetch_file_link(self, url: str) -> MediaFile:
        # A signed storage URL: fetched without our token, which must not leave for another host.
        async def once() -> MediaFile:
            started = time.perf_counter()
            try:
                response = await self._http.get(url, timeout=httpx.Timeout(60.0, connect=5.0))
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
            wait=wait_exponential_jitter(initial=self._backoff[0], max=self._backoff[1]),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await once()
        raise AssertionError("unreachable")
