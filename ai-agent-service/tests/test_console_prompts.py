"""The console's prompt editor: a saved prompt is the one the next reply is written from (on every replica,
from the database), a save that drops a required placeholder is refused naming it and changes nothing, and an
earlier version or the file can be restored."""

import html
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app import create_app
from models import PromptVersion
from services.prompt_versions import apply_live_versions
from tests.conftest import fixed_clock, handle, incoming
from tests.console_client import console_app, csrf_of

MARK = "ПРАВКА-ИЗ-КОНСОЛИ: отвечай ещё короче."


@pytest.fixture
async def app(settings, db, broker, gemini, queues) -> AsyncIterator[FastAPI]:
    async with console_app(settings) as app:
        yield app


async def save(client: httpx.AsyncClient, name: str, text: str) -> httpx.Response:
    token = await csrf_of(client, f"/console/prompts/{name}")
    return await client.post(f"/console/prompts/{name}", data={"csrf_token": token, "text": text})


def shown_text(page: str) -> str:
    return html.unescape(re.search(r'<textarea id="prompt-text"[^>]*>(.*?)</textarea>', page, re.S).group(1))


async def test_a_saved_prompt_writes_the_next_reply(app, operator, gemini, queues):
    original = shown_text((await operator.get("/console/prompts/sales_agent")).text)

    saved = await save(operator, "sales_agent", MARK + "\n" + original)
    await handle(
        incoming("Сколько стоит тариф Старт?", phone="77015550601", business="ТОО Альфа"),
        app.state.runtime.agent,
    )

    assert saved.headers["location"] == "/console/prompts/sales_agent?done=saved"
    assert gemini.prompts_of("sales")[-1].startswith(MARK)
    page = (await operator.get(saved.headers["location"])).text
    assert "Сохранено" in page and shown_text(page).startswith(MARK)


async def test_a_save_without_a_required_placeholder_is_refused_naming_it(app, operator, db):
    original = shown_text((await operator.get("/console/prompts/sales_agent")).text)

    refused = await save(operator, "sales_agent", original.replace("{reply_language}", "русском"))
    both = await save(operator, "follow_up", "Напиши клиенту {our_business_name}")

    assert refused.status_code == 422
    assert "Не сохранено: в тексте нет обязательной подстановки {reply_language}." in refused.text
    assert "{conversation_history}, {current_datetime}" in both.text
    async with db() as session:
        assert (await session.scalars(select(PromptVersion))).all() == []
    assert app.state.runtime.prompts.sales_agent.text == original


async def test_an_earlier_version_and_the_file_can_be_restored(app, operator):
    template = app.state.runtime.prompts.moderator
    file_text = template.file_text
    await save(operator, "moderator", MARK + "\n" + file_text)
    await save(operator, "moderator", "второй " + file_text)
    page = (await operator.get("/console/prompts/moderator")).text
    first_id = re.findall(r'<li data-version="(\d+)">', page)[-1]

    token = await csrf_of(operator, "/console/prompts/moderator")
    restored = await operator.post(
        f"/console/prompts/moderator/versions/{first_id}/restore", data={"csrf_token": token}
    )
    assert restored.headers["location"].endswith("?done=restored")
    assert template.text.startswith(MARK)
    page = (await operator.get("/console/prompts/moderator")).text
    assert f"восстановлена версия {first_id}" in page and len(re.findall(r"<li data-version=", page)) == 3

    await operator.post("/console/prompts/moderator/restore-file", data={"csrf_token": token})
    assert template.text == file_text


async def test_another_replica_takes_the_edited_prompt_from_the_database(app, operator, settings):
    original = app.state.runtime.prompts.follow_up.file_text
    await save(operator, "follow_up", MARK + "\n" + original)
    other = create_app(settings, clock=fixed_clock())

    async with other.router.lifespan_context(other):
        replica = other.state.runtime
        assert replica.prompts.follow_up.text.startswith(MARK)
        assert replica.follow_ups.prompt is replica.prompts.follow_up
        await apply_live_versions(replica.sessions, replica.prompts)
        assert replica.prompts.sales_agent.text == replica.prompts.sales_agent.file_text
