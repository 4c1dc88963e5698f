"""The sandbox clock runs CLOCK_OFFSET_SECONDS ahead of the machine's, and every stamp it makes uses it."""

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from conftest import FIXED_NOW, PROFILE_ID, WAPPI_TOKEN, running_sandbox
from prompts import KNOWLEDGE

from sandbox.app import create_app
from sandbox.state import SandboxState

# From Tuesday 2026-06-23 15:00 in Astana to Saturday 2026-06-27 15:00.
FOUR_DAYS = 4 * 86400.0
SATURDAY_UNIX = int((FIXED_NOW + timedelta(days=4)).timestamp())


@pytest.fixture
async def saturday() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SandboxState(clock=lambda: FIXED_NOW, clock_offset_s=FOUR_DAYS))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox.test",
        headers={"Authorization": WAPPI_TOKEN},
        params={"profile_id": PROFILE_ID},
    ) as http:
        yield http


async def test_injected_messages_are_stamped_on_the_sandbox_clock(saturday):
    message = (
        await saturday.post("/sandbox/messages", json={"phone": "77011234567", "text": "Привет"})
    ).json()
    assert message["time"] == SATURDAY_UNIX
    assert message["timestamp"] == "2026-06-27T15:00:00+05:00"
    listed = (await saturday.get("/api/sync/chats/get")).json()["dialogs"][0]
    assert listed["last_time"] == SATURDAY_UNIX


async def test_sends_are_answered_and_recorded_on_the_sandbox_clock(saturday):
    sent = await saturday.post(
        "/api/sync/message/send", json={"recipient": "77011234567", "body": "Здравствуйте"}
    )
    assert sent.json()["time"] == SATURDAY_UNIX
    assert sent.json()["timestamp"] == "2026-06-27T15:00:00+05:00"
    record = (await saturday.get("/sandbox/sent")).json()["messages"][0]
    assert record["time"] == SATURDAY_UNIX


async def test_the_admin_api_tells_the_sandbox_time_and_offset(saturday):
    clock = (await saturday.get("/sandbox/clock")).json()
    assert clock == {"now": "2026-06-27T10:00:00+00:00", "time": SATURDAY_UNIX, "offset_seconds": FOUR_DAYS}


async def test_the_admin_api_moves_the_clock_of_a_running_sandbox(saturday):
    moved = await saturday.put("/sandbox/clock", json={"offset_seconds": 86400})
    assert moved.json()["now"] == "2026-06-24T10:00:00+00:00"
    message = (
        await saturday.post("/sandbox/messages", json={"phone": "77011234567", "text": "Привет"})
    ).json()
    assert message["timestamp"] == "2026-06-24T15:00:00+05:00"
    refused = await saturday.put("/sandbox/clock", json={"offset_seconds": "завтра"})
    assert refused.status_code == 422


async def test_a_sales_prompt_without_the_current_time_is_read_on_the_sandbox_clock(saturday):
    prompt = f"БАЗА ЗНАНИЙ О ПРОДУКТАХ:\n{KNOWLEDGE}\n\nНОВОЕ СООБЩЕНИЕ КЛИЕНТА:\nДавайте завтра в 11"
    body = {
        "contents": [{"parts": [{"text": prompt}]}],
        "generationConfig": {"responseMimeType": "application/json"},
    }
    answer = await saturday.post(
        "/v1/models/gemini-2.5-pro:generateContent", headers={"x-goog-api-key": "k"}, json=body
    )
    text = answer.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert json.loads(text)["proposed_call_time"] == "2026-06-28T11:00"


@pytest.mark.parametrize(
    ("args", "env", "offset"),
    [
        ((), {"CLOCK_OFFSET_SECONDS": "-3600.5"}, -3600.5),
        (("--clock-offset", "172800"), {"CLOCK_OFFSET_SECONDS": "60"}, 172800.0),
    ],
)
def test_the_server_takes_the_offset_from_the_environment_or_the_flag(args, env, offset):
    with running_sandbox(*args, env=env) as url:
        clock = httpx.get(f"{url}/sandbox/clock").json()
        message = httpx.post(
            f"{url}/sandbox/messages", json={"phone": "77011234567", "text": "Привет"}
        ).json()
    assert clock["offset_seconds"] == offset
    assert abs(clock["time"] - (time.time() + offset)) < 5
    assert abs(message["time"] - (time.time() + offset)) < 5
