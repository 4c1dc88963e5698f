"""The health page: both services' /health, the queues' depths, the dead letters with their reasons (and a
button that puts a queue's dead letters back on it, service_kit's replay), and today's Gemini tokens with
what they cost."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from loguru import logger
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import RuntimeDep, SessionDep
from api.health import health_report, queue_sizes_of
from config.runtime import Runtime
from console.pages import render
from console.session import ConsoleRefusal, CsrfChecked, SignedIn
from models import LlmUsage
from service_kit.dead_letters import DeadLetter, peek_dead_letters, replay_dead_letters
from services.gateway_health import gateway_health

router = APIRouter(include_in_schema=False)
PAGE = "/console/health"
SHOWN_DEAD_LETTERS = 20  # per queue; the depth says how many there are
REPLAY_LIMIT = 1000
Contract = Annotated[Literal["incoming_messages", "outgoing_messages", "voice_transcription"], Path()]
PURPOSES = {
    "moderator": "Модератор",
    "sales_agent": "Ответы клиентам",
    "follow_up": "Дожим",
    "call_summary": "Итоги для менеджера",
}


@dataclass(frozen=True)
class QueueView:
    contract: str
    name: str
    depth: int | None
    dead: int | None
    letters: list[DeadLetter]


@dataclass(frozen=True)
class TokenRow:
    purpose: str
    calls: int
    prompt: int
    output: int
    usd: float


@router.get(PAGE)
async def health_page(
    request: Request, _: SignedIn, runtime: RuntimeDep, session: SessionDep, replayed: int | None = None
) -> HTMLResponse:
    gateway_url = runtime.settings.GATEWAY_URL
    context = {
        "agent": await health_report(runtime),
        "gateway_url": gateway_url,
        "gateway": await gateway_health(gateway_url) if gateway_url else None,
        "queues": await _queues(runtime),
        "tokens": await tokens_today(session, runtime),
        "replayed": replayed,
        "preview": preview,
    }
    return render(request, "health.html", context, runtime=runtime)


@router.post(PAGE + "/dead-letters/{contract}/replay")
async def replay(_: CsrfChecked, runtime: RuntimeDep, contract: Contract) -> RedirectResponse:
    try:
        moved, _left = await replay_dead_letters(runtime.connection, runtime.queues[contract], REPLAY_LIMIT)
    except Exception as exc:
        logger.warning("Console replay of {} failed: {}", contract, exc)
        raise ConsoleRefusal(503, "Брокер сейчас недоступен: попробуйте позже.", back=PAGE) from exc
    return RedirectResponse(f"{PAGE}?replayed={moved}#queues", status_code=status.HTTP_303_SEE_OTHER)


async def tokens_today(session: AsyncSession, runtime: Runtime) -> list[TokenRow]:
    """Today's (in the business's zone) Gemini calls by purpose, with their cost at the configured prices."""
    settings = runtime.settings
    since = runtime.agent.hours.day_start(runtime.agent.clock())
    rows = await session.execute(
        select(
            LlmUsage.purpose,
            func.count(),
            func.coalesce(func.sum(LlmUsage.prompt_tokens), 0),
            func.coalesce(func.sum(LlmUsage.output_tokens), 0),
        )
        .where(LlmUsage.created_at >= since)
        .group_by(LlmUsage.purpose)
        .order_by(LlmUsage.purpose)
    )
    return [
        TokenRow(
            PURPOSES.get(purpose, purpose),
            calls,
            int(prompt),
            int(output),
            (
                prompt * settings.GEMINI_PROMPT_USD_PER_MILLION
                + output * settings.GEMINI_OUTPUT_USD_PER_MILLION
            )
            / 1_000_000,
        )
        for purpose, calls, prompt, output in rows
    ]


async def _queues(runtime: Runtime) -> list[QueueView]:
    sizes = await queue_sizes_of(runtime)
    views = []
    for contract, queue in runtime.queues.by_contract.items():
        try:
            letters = await peek_dead_letters(runtime.connection, queue, SHOWN_DEAD_LETTERS)
        except Exception as exc:  # the broker away: the page still shows the rest
            logger.warning("Dead letters of {} unavailable: {}", queue.dlq, exc)
            letters = []
        views.append(QueueView(contract, queue.name, sizes.get(queue.name), sizes.get(queue.dlq), letters))
    return views


def preview(letter: DeadLetter) -> str:
    """Whose message and what it says, from the body when it is the contract's JSON."""
    try:
        body: Any = json.loads(letter.body)
    except ValueError:
        return letter.body[:200].decode("utf-8", "replace")
    if not isinstance(body, dict):
        return str(body)[:200]
    phone = body.get("phone_number") or body.get("phone") or ""
    text = str(body.get("message_text") or body.get("text") or "")
    return (f"+{phone}: " if phone else "") + (text[:200] + ("…" if len(text) > 200 else ""))
