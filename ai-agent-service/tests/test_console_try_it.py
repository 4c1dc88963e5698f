"""The console's "try it as a customer" on a sandbox install: what the operator writes or records arrives in
the sandbox's WhatsApp as the customer's message, the chat shows both sides; without SANDBOX_URL there is no
page."""

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from app import create_app
from tests.conftest import fixed_clock
from tests.console_client import browser, csrf_of, sign_in

PASSWORD = "консоль"
PHONE = "77015550801"


async def running(settings, **update) -> AsyncIterator[FastAPI]:
    app = create_app(
        settings.model_copy(update={"CONSOLE_PASSWORD": SecretStr(PASSWORD), **update}), clock=fixed_clock()
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def operator(settings, db, broker, queues, sandbox, sandbox_url) -> AsyncIterator[httpx.AsyncClient]:
    async for app in running(settings, SANDBOX_URL=sandbox_url):
        async with browser(app) as client:
            await sign_in(client, PASSWORD)
            yield client


async def test_a_written_message_reaches_the_sandbox_as_the_customers(operator, sandbox):
    page = await operator.get("/console/try", params={"phone": PHONE, "name": "Дана", "business": "ТОО Дана"})
    token = await csrf_of(operator, "/console/try")
    fields = {"csrf_token": token, "phone": PHONE, "name": "Дана", "business": "ТОО Дана"}

    written = await operator.post(
        "/console/try/messages", data=fields | {"text": "Сколько стоит тариф Старт?"}
    )
    voiced = await operator.post(
        "/console/try/voice",
        data=fields | {"said": "А доставка есть?"},
        files={"audio": ("voice.webm", b"\x1aE\xdf\xa3recorded", "audio/webm")},
    )
    chat = (await sandbox.get(f"/sandbox/chats/{PHONE}")).json()
    shown = await operator.get("/console/try/chat", params={"phone": PHONE})

    assert page.status_code == 200 and 'href="/console/try"' in page.text  # in the navigation
    assert written.headers["location"] == "/console/try?" + urlencode(
        {"phone": PHONE, "name": "Дана", "business": "ТОО Дана"}
    )
    assert voiced.status_code == 303
    [text, voice] = chat["messages"]
    assert text["body"] == "Сколько стоит тариф Старт?" and text["senderName"] == "Дана"
    assert voice["type"] == "ptt"
    audio = (await sandbox.get(voice["file_link"])).content
    assert audio == b"\x1aE\xdf\xa3recorded" + "SANDBOX-TRANSCRIPT:А доставка есть?".encode()
    assert '<li class="mine"><span class="text">Сколько стоит тариф Старт?</span>' in shown.text
    assert "🎤 Голосовое сообщение" in shown.text


async def test_without_a_sandbox_there_is_no_such_page(settings, db, broker, queues):
    async for app in running(settings):
        async with browser(app) as client:
            await sign_in(client, PASSWORD)
            page = await client.get("/console/try")
            home = await client.get("/console/conversations")

    assert page.status_code == 404 and "только в установке на песочнице" in page.text
    assert 'href="/console/try"' not in home.text
