"""Scenario 4, cost per reply as the knowledge base grows: prompt tokens of a sales reply with the project's
retrieval (the agent's KnowledgeBase + sales prompt, in this process) against the same prompt carrying the
whole base, for synthetic bases of 3, 30 and 300 pages. Tokens are what the fake Gemini reports in its
usage metadata for the prompt (about one token per four characters). Also timed: the reply guard each
sales reply runs against every figure the base states, once indexing them after a build and then per reply
(a lookup that must not grow with the base)."""

import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import ROOT
from system import PYTHON

AGENT = ROOT / "ai-agent-service"
# First messages of sales conversations; the reply's retrieval query is the message itself.
SALES_QUESTIONS = (
    "Здравствуйте, сколько стоит тариф Старт?",
    "Добрый день! Какие у вас тарифы для оптовой базы с двумя складами?",
    "Есть интеграция с Kaspi? Сколько она стоит?",
    "Сколько стоит перенос данных из 1С и сколько времени займёт?",
    "Можно ли вести учёт партий и сроков годности для аптеки?",
    "Есть ли пробный период и как проходит обучение сотрудников?",
    "Сколько пользователей может работать одновременно на тарифе Бизнес?",
    "Как оплатить по счёту и будет ли договор с ЭСФ?",
)

SAMPLE_REPLY = "Тариф Старт стоит 9 900 ₸ в месяц, до 3 пользователей. Сколько у вас складов? 😊"
GUARD_ROUNDS = 50


def make_base(pages: int, folder: Path) -> None:
    subprocess.run(
        [str(PYTHON), "scripts/make_knowledge_base.py", "--pages", str(pages), "--out", str(folder)],
        cwd=AGENT,
        check=True,
        capture_output=True,
    )


async def prompt_tokens(gemini: httpx.AsyncClient, prompt: str) -> int:
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    answer = await gemini.post("/v1/models/gemini-2.5-pro:generateContent", json=body)
    answer.raise_for_status()
    return answer.json()["usageMetadata"]["promptTokenCount"]


async def run_kb_cost(page_counts: tuple[int, ...]) -> dict[str, Any]:
    # The agent's packages (services, utils, ...) are imported from its folder, as the service itself does.
    sys.path.insert(0, str(AGENT))
    from loguru import logger

    from config.prompts import load_prompts
    from sandbox.app import create_app
    from services.ai_sales_agent import KnowledgeSearch
    from services.conversation_text import format_history
    from services.knowledge_base import KnowledgeBase
    from services.knowledge_index import format_chunks
    from services.reply_guard import check_reply
    from utils.timezone_helper import ASTANA, format_local

    logger.disable("services")  # the knowledge base reports each file it indexes
    # The sample knowledge base's company, answering in Russian.
    template = load_prompts(AGENT / "prompts", "ТОО «СкладПро»").sales_agent
    transport = httpx.ASGITransport(app=create_app())
    now = format_local(datetime.now(UTC), ASTANA)

    def render(knowledge: str, question: str) -> str:
        return template.render(
            knowledge_base=knowledge,
            conversation_history=format_history([], ASTANA),
            new_message=question,
            current_datetime=now,
            reply_language="русском",
        )

    results = {}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://fake", headers={"x-goog-api-key": "k"}
    ) as gemini:
        with tempfile.TemporaryDirectory(prefix="bench_kb_") as tmp:
            for pages in page_counts:
                folder = Path(tmp) / f"kb{pages}"
                await asyncio.to_thread(make_base, pages, folder)
                started = time.perf_counter()
                base = await asyncio.to_thread(KnowledgeBase, folder)
                indexed_s = time.perf_counter() - started
                search = KnowledgeSearch(base)
                retrieval, search_ms = [], []
                for question in SALES_QUESTIONS:
                    started = time.perf_counter()
                    knowledge = await search.relevant_text(question)
                    search_ms.append((time.perf_counter() - started) * 1000)
                    retrieval.append(await prompt_tokens(gemini, render(knowledge, question)))
                # What the sales agent runs on every reply (_checked_reply): the guard against the base's
                # figures. The first reply after a build indexes them; every later one looks them up.
                started = time.perf_counter()
                check_reply(SAMPLE_REPLY, search.full_text(), [template.text])
                figures_ms = (time.perf_counter() - started) * 1000
                started = time.perf_counter()
                for _ in range(GUARD_ROUNDS):
                    check_reply(SAMPLE_REPLY, search.full_text(), [template.text])
                guard_ms = (time.perf_counter() - started) * 1000 / GUARD_ROUNDS
                whole = await prompt_tokens(gemini, render(format_chunks(base.chunks), SALES_QUESTIONS[0]))
                results[pages] = {
                    "chunks": base.chunk_count,
                    "index_s": round(indexed_s, 2),
                    "search_ms": round(sum(search_ms) / len(search_ms), 2),
                    "tokens_retrieval": round(sum(retrieval) / len(retrieval)),
                    "tokens_whole_base": whole,
                    "reply_guard_ms": round(guard_ms, 3),
                    "guard_figures_ms": round(figures_ms, 1),
                }
    return results
