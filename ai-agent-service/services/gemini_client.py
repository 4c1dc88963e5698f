"""The one door to Gemini: JSON answers checked against a pydantic schema, bounded retries on transient
errors, and the tokens of every call recorded (llm_usage + Prometheus). Nothing else imports google.genai.
While a call waits for Gemini's answer or for its next retry, the caller's work slot (if it holds one)
serves other messages."""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import httpx
from google import genai
from google.genai import _transformers, errors, types
from loguru import logger
from pydantic import BaseModel, ValidationError
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from models import LlmUsage
from service_kit.clock import Clock, utc_now
from service_kit.runtime import autocommit_session
from services.work_slots import slot_given_back
from utils.metrics import AgentMetrics

SchemaT = TypeVar("SchemaT", bound=BaseModel)
TRANSIENT_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})
# Connection pools the calls are spread over (see _PooledTransport); 8 keep each to a few dozen connections.
HTTP_POOLS = 8


class GeminiError(Exception):
    """Gemini did not give a usable answer."""


class GeminiUnavailable(GeminiError):
    """429 / 5xx / timeouts persisted through every retry; worth trying again later."""

    transient = True


class GeminiModelNotFound(GeminiError):
    """The configured model does not exist (retired or misspelled): a configuration problem."""


class GeminiRejected(GeminiError):
    """Gemini refused the request (bad key, bad request): retrying the same request will not help."""


class GeminiUnusableAnswer(GeminiError):
    """Gemini answered, but with nothing a client can be sent: asking again may help, waiting will not.

    `reason` says why in a few words ("blocked: SAFETY", "cut off at MAX_TOKENS", "off-schema").
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class GeminiBlocked(GeminiUnusableAnswer):
    """No text: the prompt or the candidate was blocked (SAFETY, RECITATION, ...), or no candidate at all."""


class GeminiTruncated(GeminiUnusableAnswer):
    """The text was cut off at MAX_TOKENS, so its JSON does not parse: a shorter prompt may fit."""


class GeminiBadOutput(GeminiUnusableAnswer):
    """The answer was not JSON of the requested schema."""


@dataclass(frozen=True)
class GeminiRetries:
    """How long one call may take and how often a transient failure (429, 5xx, timeout) is tried again."""

    timeout_s: float = 90.0
    attempts: int = 3
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 20.0


@dataclass
class GeminiStatus:
    """The outcome of the last call, reported by /health without spending tokens on a probe."""

    state: str = "unknown"  # "ok", "unavailable", "model_not_found", "rejected", "bad_output"
    detail: str | None = None
    at: datetime | None = None


class GeminiClient:
    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str,
        sessions: async_sessionmaker[AsyncSession],
        metrics: AgentMetrics,
        retries: GeminiRetries = GeminiRetries(),
        clock: Clock = utc_now,
    ):
        self.model = model
        self._clock = clock  # usage rows are stamped by the service's clock: "today" is the service's day
        self.status = GeminiStatus()
        self._sessions = sessions
        self._metrics = metrics
        # llm_usage rows waiting for the next group insert, and the lock that lets one insert run at a time.
        self._pending_usage: list[dict[str, object]] = []
        self._usage_lock = asyncio.Lock()
        self._retries = retries
        # Our own httpx client: one set of pools for the life of the service, and one transport everywhere.
        self._http = httpx.AsyncClient(transport=_PooledTransport(HTTP_POOLS))
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url, timeout=int(retries.timeout_s * 1000), httpx_async_client=self._http
            ),
        )

    async def generate_json(self, prompt: str, schema: type[SchemaT], purpose: str) -> SchemaT:
        config = _json_config(schema)
        started = time.monotonic()
        try:
            response = await self._call_with_retries(prompt, config, purpose)
        except GeminiError as exc:
            self._metrics.gemini_calls.labels(purpose, type(exc).__name__).inc()
            raise
        await self._record_usage(purpose, response.usage_metadata)
        try:
            result = _parsed(response, schema, purpose)
        except GeminiUnusableAnswer as exc:
            self._metrics.gemini_calls.labels(purpose, type(exc).__name__).inc()
            self._set_status("bad_output", f"{purpose}: {exc.reason}")
            raise
        self._metrics.gemini_calls.labels(purpose, "ok").inc()
        self._set_status("ok", None)
        logger.debug("Gemini {} answered in {:.2f}s", purpose, time.monotonic() - started)
        return result

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call_with_retries(
        self, prompt: str, config: types.GenerateContentConfig, purpose: str
    ) -> types.GenerateContentResponse:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retries.attempts),
            wait=wait_exponential_jitter(
                initial=self._retries.backoff_initial_s, max=self._retries.backoff_max_s
            ),
            retry=retry_if_exception(_is_transient),
            before_sleep=_log_retry(purpose),
            sleep=_back_off,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._client.aio.models.generate_content(
                        model=self.model, contents=prompt, config=config
                    )
        except errors.APIError as exc:
            raise self._translate(exc, purpose) from exc
        except httpx.TransportError as exc:
            detail = f"{type(exc).__name__} after {self._retries.attempts} attempts"
            self._set_status("unavailable", detail)
            raise GeminiUnavailable(f"Gemini unreachable ({purpose}): {detail}") from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _translate(self, exc: errors.APIError, purpose: str) -> GeminiError:
        if exc.code == 404:
            message = f"Gemini model {self.model!r} not found (HTTP 404): set GEMINI_MODEL to a current model"
            logger.error(message)
            self._set_status("model_not_found", message)
            return GeminiModelNotFound(message)
        detail = f"HTTP {exc.code} {exc.status or ''}: {exc.message or ''}".strip()
        if exc.code in TRANSIENT_STATUS_CODES:
            self._set_status("unavailable", detail)
            return GeminiUnavailable(
                f"Gemini unavailable ({purpose}) after {self._retries.attempts} attempts: {detail}"
            )
        self._set_status("rejected", detail)
        return GeminiRejected(f"Gemini rejected the {purpose} request: {detail}")

    async def _record_usage(
        self, purpose: str, usage: types.GenerateContentResponseUsageMetadata | None
    ) -> None:
        prompt_tokens = (usage.prompt_token_count or 0) if usage else 0
        # Thinking tokens are billed as output.
        output_tokens = (
            ((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0
        )
        self._metrics.gemini_tokens.labels(purpose, "prompt").inc(prompt_tokens)
        self._metrics.gemini_tokens.labels(purpose, "output").inc(output_tokens)
        self._pending_usage.append(
            {
                "purpose": purpose,
                "model": self.model,
                "prompt_tokens": prompt_tokens,
                "output_tokens": output_tokens,
                "created_at": self._clock(),
            }
        )
        # Group commit: every call returns only once its row is stored, but the calls that finish while
        # an insert runs share the next one: hundreds of calls in flight cost a few transactions.
        async with self._usage_lock:
            rows, self._pending_usage = self._pending_usage, []
            if not rows:  # an insert that ran meanwhile took this call's row too
                return
            try:
                # One INSERT of all rows is atomic on its own: no BEGIN/COMMIT round trips around it.
                async with autocommit_session(self._sessions) as session:
                    await session.execute(insert(LlmUsage.__table__), rows)
            except BaseException:
                self._pending_usage[:0] = rows  # the tokens were spent: the next insert tries them again
                raise

    def _set_status(self, state: str, detail: str | None) -> None:
        self.status = GeminiStatus(state=state, detail=detail, at=utc_now())


class _PooledTransport(httpx.AsyncBaseTransport):
    """Requests spread round-robin over a few connection pools with no cap on connections.

    No cap, because httpx's default of 100 would queue calls unseen (AGENT_CONCURRENCY bounds them); a few
    pools, because httpcore scans its whole pool, idle connections squared, on every request and response,
    which at hundreds of calls in flight costs more CPU than the calls themselves.
    """

    def __init__(self, pools: int):
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        ssl_context = httpx.create_ssl_context()  # the CA bundle loaded once, not once per pool
        self._pools = [httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits) for _ in range(pools)]
        self._next = itertools.cycle(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with slot_given_back():  # the request is built: what is left is waiting for Gemini
            return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


@functools.cache
def _json_config(schema: type[BaseModel]) -> types.GenerateContentConfig:
    """The request config asking for JSON of `schema`, built once per schema: handed a pydantic class, the SDK
    would derive Gemini's schema from it again on every call (a fifth of the agent's CPU under load)."""
    gemini_schema = _transformers.t_schema(None, schema)
    return types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=gemini_schema,
        # No tools are offered: the SDK's function-calling loop (and its INFO line per call) is only overhead.
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )


def _parsed(response: types.GenerateContentResponse, schema: type[SchemaT], purpose: str) -> SchemaT:
    """The answer as `schema`, or GeminiUnusableAnswer saying why there is none."""
    candidate = response.candidates[0] if response.candidates else None
    finish = candidate.finish_reason.value if candidate and candidate.finish_reason else None
    text = response.text
    if candidate is None:
        feedback = response.prompt_feedback
        blocked_by = feedback.block_reason.value if feedback and feedback.block_reason else "no candidates"
        message = f"{purpose}: Gemini gave no answer (prompt {blocked_by})"
        raise GeminiBlocked(message, f"blocked: {blocked_by}")
    if not text:
        raise GeminiBlocked(f"{purpose}: Gemini's answer has no text ({finish})", f"blocked: {finish}")
    try:
        return schema.model_validate_json(text)
    except ValidationError as exc:
        if finish == "MAX_TOKENS":
            raise GeminiTruncated(
                f"{purpose}: Gemini's answer was cut off at MAX_TOKENS", "cut off at MAX_TOKENS"
            ) from exc
        raise GeminiBadOutput(
            f"{purpose}: Gemini's answer is not a valid {schema.__name__}: {exc}", "off-schema"
        ) from exc


async def _back_off(seconds: float) -> None:
    async with slot_given_back():
        await asyncio.sleep(seconds)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, errors.APIError):
        return exc.code in TRANSIENT_STATUS_CODES
    return isinstance(exc, httpx.TransportError)


def _log_retry(purpose: str):
    def log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        logger.warning(
            "Gemini {} attempt {} failed ({}); retrying in {:.1f}s", purpose, state.attempt_number, exc, wait
        )

    return log
