import asyncio
import time

SEND = "/api/sync/message/send"
HTML_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


async def set_fault(client, **fault) -> None:
    answer = await client.post("/sandbox/faults", json=fault)
    assert answer.status_code == 200, answer.text


async def send(wappi, text: str = "Здравствуйте"):
    return await wappi.post(SEND, json={"recipient": "77011234567", "body": text})


async def test_counted_fault_fails_the_next_calls_then_expires(client, wappi):
    await set_fault(client, endpoint="message/send", status=500, count=2)

    first, second, third = [await send(wappi, str(n)) for n in range(3)]
    assert first.status_code == second.status_code == 500
    assert first.json() == {"status": "error", "detail": "Injected fault: HTTP 500"}
    assert third.status_code == 200
    assert (await client.get("/sandbox/faults")).json() == {"faults": []}
    assert [r["body"] for r in (await client.get("/sandbox/sent")).json()["messages"]] == ["2"]


async def test_rate_decides_how_often_a_fault_fires(client, wappi):
    await set_fault(client, endpoint="chats/get", status=429, rate=1.0)
    assert {(await wappi.get("/api/sync/chats/get")).status_code for _ in range(5)} == {429}

    await set_fault(client, endpoint="chats/get", status=429, rate=0.0)
    assert {(await wappi.get("/api/sync/chats/get")).status_code for _ in range(5)} == {200}


async def test_latency_only_fault_delays_but_answers(client, wappi):
    await set_fault(client, endpoint="get/status", status=None, latency_ms=300)
    started = time.monotonic()
    answer = await wappi.get("/api/sync/get/status")
    assert answer.status_code == 200 and answer.json()["authorized"] is True
    assert time.monotonic() - started >= 0.3


async def test_html_error_page_fault_returns_raw_html(client, wappi):
    await set_fault(client, endpoint="messages/get", status=502, body=HTML_PAGE)
    answer = await wappi.get("/api/sync/messages/get", params={"chat_id": "77011234567@c.us"})
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text == HTML_PAGE


async def test_delete_clears_every_fault(client, wappi):
    await set_fault(client, endpoint="message/send", status=503)
    await set_fault(client, endpoint="files", status=500)
    assert (await send(wappi)).status_code == 503

    assert (await client.delete("/sandbox/faults")).status_code == 200
    assert (await client.get("/sandbox/faults")).json() == {"faults": []}
    assert (await send(wappi)).status_code == 200


async def test_unknown_fault_endpoint_is_rejected(client):
    assert (await client.post("/sandbox/faults", json={"endpoint": "nope", "status": 500})).status_code == 422


async def test_gemini_fault_uses_the_gemini_error_shape(client):
    await set_fault(client, endpoint="gemini", status=503)
    answer = await client.post(
        "/v1/models/gemini-2.5-pro:generateContent",
        headers={"x-goog-api-key": "k"},
        json={"contents": [{"role": "user", "parts": [{"text": "Привет"}]}]},
    )
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == 503 and answer.json()["error"]["status"] == "UNAVAILABLE"

    await set_fault(client, endpoint="gemini", status=429)
    answer = await client.post(
        "/v1/models/gemini-2.5-pro:generateContent",
        headers={"x-goog-api-key": "k"},
        json={"contents": [{"parts": [{"text": "Привет"}]}]},
    )
    assert answer.status_code == 429 and answer.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


async def test_stats_count_calls_per_endpoint_and_gemini_concurrency_and_time(client, wappi):
    await wappi.get("/api/sync/chats/get")
    await wappi.get("/api/sync/chats/get")
    await send(wappi)
    await client.get("/api/sync/get/status")  # rejected for lack of a token, yet counted
    await set_fault(client, endpoint="gemini", status=None, latency_ms=200)

    async def ask():
        return await client.post(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            headers={"x-goog-api-key": "k"},
            json={"contents": [{"parts": [{"text": "Привет"}]}]},
        )

    answers = await asyncio.gather(*(ask() for _ in range(4)))
    assert {a.status_code for a in answers} == {200}

    stats = (await client.get("/sandbox/stats")).json()
    assert stats["calls"] == {"chats/get": 2, "message/send": 1, "get/status": 1, "gemini": 4}
    busy = stats["gemini"].pop("busy_ms")
    assert stats["gemini"] == {"calls": 4, "in_flight": 0, "peak_in_flight": 4}
    assert 4 * 200 <= busy < 4 * 200 + 400  # four calls of 200 ms each, added up


async def test_reset_forgets_chats_sends_faults_and_stats(client, wappi):
    await client.post("/sandbox/messages", json={"phone": "77011234567", "text": "Привет"})
    await send(wappi)
    await set_fault(client, endpoint="chats/get", status=500)

    assert (await client.post("/sandbox/reset")).json() == {"status": "ok"}

    assert (await client.get("/sandbox/sent")).json() == {"messages": []}
    assert (await client.get("/sandbox/faults")).json() == {"faults": []}
    assert (await client.get("/sandbox/stats")).json()["calls"] == {}
    listing = await wappi.get("/api/sync/chats/get")
    assert listing.status_code == 200 and listing.json()["dialogs"] == []
    assert (await client.get("/sandbox/health")).json() == {"status": "ok"}
