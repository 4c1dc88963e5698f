"""The console's health page: both services' /health (the gateway's through GATEWAY_URL, faked with respx, and
said plainly when it does not answer), the queues' depths, the dead letters with their reasons and a replay
that puts them back on their queue, and today's Gemini tokens with their cost."""

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import respx
from fastapi import FastAPI

from models import LlmUsage
from service_kit.publisher import Outgoing
from tests.conftest import WEDNESDAY_3PM
from tests.console_client import console_app, csrf_of

GATEWAY = "http://gateway.test:8001"


@pytest.fixture
async def app(settings, db, broker, queues) -> AsyncIterator[FastAPI]:
    async with console_app(
        settings, GATEWAY_URL=GATEWAY, GEMINI_PROMPT_USD_PER_MILLION=2.0, GEMINI_OUTPUT_USD_PER_MILLION=10.0
    ) as app:
        yield app


@pytest.fixture
def gateway():
    with respx.mock(assert_all_called=False) as router:
        yield router.get(f"{GATEWAY}/health")


async def test_both_services_health_is_shown(operator, gateway):
    gateway.respond(200, json={"status": "healthy", "wappi_connection": "ok", "last_poll_time": "11:00"})

    page = (await operator.get("/console/health")).text

    agent = page.split('id="agent-health"')[1].split("</section>")[0]
    assert "работает" in agent and "База данных: ok · брокер: ok" in agent
    shown = page.split('id="gateway-health"')[1].split("</section>")[0]
    assert "работает" in shown and "wappi_connection: ok" in shown and "last_poll_time: 11:00" in shown


async def test_a_gateway_that_does_not_answer_is_said_so(operator, gateway):
    gateway.mock(side_effect=httpx.ConnectError("refused"))

    page = (await operator.get("/console/health")).text

    assert f"{GATEWAY}: недоступен (ConnectError)" in page


async def test_dead_letters_are_listed_with_the_reason_and_replayed(app, operator, gateway, broker):
    gateway.respond(503, json={"status": "unhealthy", "database": "down"})
    runtime = app.state.runtime
    queue = runtime.queues["incoming_messages"]
    body = {"phone_number": "77015550701", "message_text": "Здравствуйте, сколько стоит?"}
    await runtime.publisher.publish(
        Outgoing(
            queue.name,
            json.dumps(body, ensure_ascii=False).encode(),
            message_id="dead-1",
            headers={"x-dlq-reason": "schema: 'message_id' is a required property"},
            exchange=queue.dlx,
        )
    )
    await runtime.consumer.stop()  # the replayed message stays on the queue to be counted

    page = (await operator.get("/console/health")).text
    token = await csrf_of(operator, "/console/health")
    replayed = await operator.post(
        "/console/health/dead-letters/incoming_messages/replay", data={"csrf_token": token}
    )
    after = (await operator.get(replayed.headers["location"])).text

    assert "неисправен" in page.split('id="gateway-health"')[1].split("</section>")[0]
    row = page.split('<tr data-queue="incoming_messages">')[1].split("</tr>")[0]
    assert '<td class="dead">1</td>' in row
    letters = page.split('<ol class="dead-letters" data-queue="incoming_messages">')[1].split("</ol>")[0]
    assert "schema: &#39;message_id&#39; is a required property" in letters
    assert "dead-1 · +77015550701: Здравствуйте, сколько стоит?" in letters
    assert replayed.headers["location"] == "/console/health?replayed=1#queues"
    assert "Возвращено в очередь сообщений: 1." in after
    row = after.split('<tr data-queue="incoming_messages">')[1].split("</tr>")[0]
    assert '<td class="depth">1</td>' in row and '<td class="dead">0</td>' in row


async def test_todays_tokens_and_cost(operator, gateway, db):
    gateway.respond(200, json={"status": "ok"})
    async with db.begin() as session:
        for purpose, prompt, output, at in [
            ("sales_agent", 300_000, 20_000, WEDNESDAY_3PM - timedelta(hours=2)),
            ("sales_agent", 200_000, 30_000, WEDNESDAY_3PM - timedelta(hours=1)),
            ("moderator", 100_000, 5_000, WEDNESDAY_3PM - timedelta(hours=1)),
            ("sales_agent", 900_000, 90_000, WEDNESDAY_3PM - timedelta(days=1)),  # yesterday
        ]:
            session.add(
                LlmUsage(
                    purpose=purpose, model="m", prompt_tokens=prompt, output_tokens=output, created_at=at
                )
            )

    page = (await operator.get("/console/health")).text

    tokens = page.split('id="tokens"')[1].split("</section>")[0]
    assert "<td>Ответы клиентам</td><td>2</td><td>500000</td><td>50000</td><td>1.5000</td>" in tokens
    assert "<td>Модератор</td><td>1</td><td>100000</td><td>5000</td><td>0.2500</td>" in tokens
    assert '<th id="cost-today">1.7500</th>' in tokens
