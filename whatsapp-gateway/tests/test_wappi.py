"""WappiClient against respx-faked Wappi answers: parsing, retries, clear errors, no leaked token."""

import asyncio
import base64
import io

import httpx
import pytest
import respx
from loguru import logger

from service_kit.logs import redact
from services.voice_length import ogg_opus_seconds
from services.wappi_client import VoiceTooLarge, WappiClient, WappiError
from utils.metrics import GatewayMetrics

BASE = "https://wappi.test"
TOKEN = "secret-wappi-token-123"
LIMIT = 10 * 1024 * 1024


@pytest.fixture
async def wappi():
    client = WappiClient(
        base_url=BASE,
        token=TOKEN,
        profile_id="prof-1",
        metrics=GatewayMetrics(),
        backoff_initial=0.01,
        backoff_max=0.02,
    )
    yield client
    await client.close()


@respx.mock
async def test_requests_carry_the_bare_token_and_profile_id(wappi):
    route = respx.get(f"{BASE}/api/sync/get/status").respond(json={"status": "done", "authorized": True})
    status = await wappi.get_status()
    assert status.authorized
    request = route.calls.last.request
    assert request.headers["Authorization"] == TOKEN
    assert request.url.params["profile_id"] == "prof-1"


@respx.mock
@pytest.mark.parametrize("key", ["dialogs", "chats"])
async def test_chat_lists_are_parsed_defensively(wappi, key):
    respx.get(f"{BASE}/api/sync/chats/get").respond(
        json={
            "status": "done",
            key: [
                {
                    "id": "77011234567@c.us",
                    "name": "A",
                    "last_time": 1790000000,
                    "last_message_data": {"id": "X1"},
                },
                {"id": "77011234568@c.us", "last_timestamp": 1790000001000},
                {"id": "123-456@g.us", "last_message_data": {"time": 1790000002}},
                {"name": "no id at all"},
            ],
        }
    )
    chats = await wappi.list_chats()
    assert [(c.id, c.last_time, c.chat_type) for c in chats] == [
        ("77011234567@c.us", 1790000000, "dialog"),
        ("77011234568@c.us", 1790000001, "dialog"),
        ("123-456@g.us", 1790000002, "group"),
    ]
    assert chats[0].last_message_id == "X1"


@respx.mock
@pytest.mark.parametrize("answer", [{"message_id": "ID1"}, {"id": "ID1"}, {"message": {"id": "ID1"}}])
async def test_the_sent_message_id_is_found_wherever_wappi_puts_it(wappi, answer):
    route = respx.post(f"{BASE}/api/sync/message/send").respond(json={"status": "done", **answer})
    result = await wappi.send_text("77011234567", "Здравствуйте")
    assert result.message_id == "ID1"
    assert route.calls.last.request.url.params["profile_id"] == "prof-1"


@respx.mock
async def test_429_and_500_are_retried_until_the_call_succeeds(wappi):
    route = respx.post(f"{BASE}/api/sync/message/reply").mock(
        side_effect=[
            httpx.Response(429, json={"status": "error", "detail": "Too many requests"}),
            httpx.Response(500, json={"status": "error", "detail": "Internal"}),
            httpx.Response(200, json={"status": "done", "message_id": "R1"}),
        ]
    )
    assert (await wappi.reply("ORIG", "ok")).message_id == "R1"
    assert route.call_count == 3


@respx.mock
async def test_retries_are_bounded_and_end_in_a_transient_error(wappi):
    route = respx.post(f"{BASE}/api/sync/message/send").respond(503, json={"detail": "maintenance"})
    with pytest.raises(WappiError) as caught:
        await wappi.send_text("77011234567", "hi")
    assert route.call_count == 4
    assert caught.value.transient and caught.value.status == 503 and caught.value.detail == "maintenance"


@respx.mock
async def test_timeouts_are_retried(wappi):
    route = respx.get(f"{BASE}/api/sync/get/status").mock(
        side_effect=[
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json={"status": "done", "app_status": "open"}),
        ]
    )
    assert (await wappi.get_status()).authorized
    assert route.call_count == 2


@respx.mock
async def test_a_wappi_error_body_is_a_permanent_error_with_its_detail(wappi):
    route = respx.post(f"{BASE}/api/sync/message/reply").respond(
        400, json={"status": "error", "detail": "message not found"}
    )
    with pytest.raises(WappiError) as caught:
        await wappi.reply("NOPE", "hi")
    assert route.call_count == 1
    assert not caught.value.transient
    assert caught.value.status == 400 and "message not found" in str(caught.value)


@respx.mock
async def test_an_html_error_page_is_a_clear_error_not_a_crash(wappi):
    page = (
        "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    )
    respx.get(f"{BASE}/api/sync/chats/get").respond(502, text=page, headers={"content-type": "text/html"})
    with pytest.raises(WappiError) as caught:
        await wappi.list_chats()
    assert caught.value.transient
    assert "non-JSON answer (text/html)" in caught.value.detail and "502 Bad Gateway" in caught.value.detail
    assert "<" not in caught.value.detail


@respx.mock
async def test_an_html_page_with_status_200_is_an_error_too(wappi):
    respx.get(f"{BASE}/api/sync/messages/get").respond(
        200, text="<html>Maintenance</html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(WappiError, match="non-JSON answer"):
        await wappi.get_messages("77011234567@c.us")


@respx.mock
async def test_the_token_never_reaches_the_logs(wappi):
    respx.post(f"{BASE}/api/sync/message/send").respond(401, json={"detail": "bad token"})
    sink = io.StringIO()
    handler_id = logger.add(sink, level="DEBUG")
    try:
        with pytest.raises(WappiError) as caught:
            await wappi.send_text("77011234567", "hi")
        logger.error("send failed: {}", caught.value)
    finally:
        logger.remove(handler_id)
    assert TOKEN not in sink.getvalue() and TOKEN not in str(caught.value)
    assert redact(f"Authorization: {TOKEN}", [TOKEN]) == "Authorization: ***"


@respx.mock
async def test_voice_is_downloaded_from_file_link_without_our_token(wappi):
    route = respx.get("https://storage.test/a.ogg").respond(
        200, content=b"OggS-audio", headers={"content-type": "audio/ogg"}
    )
    media = await wappi.download_voice("M1", "https://storage.test/a.ogg", max_bytes=LIMIT)
    assert media.data == b"OggS-audio" and media.mime_type == "audio/ogg"
    assert "Authorization" not in route.calls.last.request.headers


@respx.mock
async def test_voice_download_falls_back_to_media_download(wappi):
    respx.get("https://storage.test/expired.ogg").respond(403, text="expired")
    fallback = respx.get(f"{BASE}/api/sync/message/media/download").respond(
        json={
            "status": "done",
            "file_name": "a.ogg",
            "mime_type": "audio/ogg",
            "file_data": base64.b64encode(b"OggS-fallback").decode(),
        }
    )
    media = await wappi.download_voice("M1", "https://storage.test/expired.ogg", max_bytes=LIMIT)
    assert media.data == b"OggS-fallback"
    assert fallback.calls.last.request.url.params["message_id"] == "M1"


@respx.mock
async def test_audio_over_the_size_limit_is_given_up_while_streaming(wappi):
    chunks_sent = 0

    async def endless_audio():
        nonlocal chunks_sent
        for _ in range(1000):  # 64 MB if it were all read; no length announced
            chunks_sent += 1
            yield b"\0" * 65536

    respx.get("https://storage.test/long.ogg").respond(200, stream=endless_audio())
    with pytest.raises(VoiceTooLarge):
        await wappi.download_voice("M1", "https://storage.test/long.ogg", max_bytes=1024 * 1024)
    assert chunks_sent <= 20  # stopped just past the first megabyte


@respx.mock
async def test_audio_announced_larger_than_the_limit_is_not_read(wappi):
    respx.get("https://storage.test/big.ogg").respond(
        200, content=b"OggS" * 100, headers={"content-length": str(50 * 1024 * 1024)}
    )
    with pytest.raises(VoiceTooLarge):
        await wappi.download_voice("M1", "https://storage.test/big.ogg", max_bytes=1024 * 1024)


@respx.mock
async def test_the_media_download_fallback_keeps_the_size_limit_too(wappi):
    respx.get("https://storage.test/expired.ogg").respond(403, text="expired")
    audio = base64.b64encode(b"\0" * 300_000).decode()
    respx.get(f"{BASE}/api/sync/message/media/download").respond(json={"status": "done", "file_data": audio})
    with pytest.raises(VoiceTooLarge):
        await wappi.download_voice("M1", "https://storage.test/expired.ogg", max_bytes=100_000)
    media = await wappi.download_voice("M1", "https://storage.test/expired.ogg", max_bytes=300_000)
    assert len(media.data) == 300_000


def test_an_ogg_opus_note_says_its_length_in_its_last_page():
    head = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead\x01\x01\x38\x01\x80\x3e\x00\x00"
    last_page = b"OggS\x00\x04" + (48_000 * 361).to_bytes(8, "little") + b"\x00" * 12
    assert ogg_opus_seconds(head + b"audio" + last_page) == 361
    assert ogg_opus_seconds(head + b"audio") is None  # a granule of 0 says nothing
    assert ogg_opus_seconds(b"ID3 an mp3") is None


@respx.mock
async def test_downloads_run_one_at_a_time(wappi):
    in_flight = peak = 0

    async def slow(request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return httpx.Response(200, content=b"OggS")

    respx.get(url__startswith="https://storage.test/").mock(side_effect=slow)
    await asyncio.gather(
        *(wappi.download_voice(f"M{i}", f"https://storage.test/{i}.ogg", max_bytes=LIMIT) for i in range(4))
    )
    assert peak == 1


@respx.mock
async def test_wappi_latency_and_errors_are_measured():
    metrics = GatewayMetrics()
    client = WappiClient(base_url=BASE, token=TOKEN, profile_id="p", metrics=metrics, attempts=1)
    respx.get(f"{BASE}/api/sync/get/status").respond(500, json={"detail": "x"})
    with pytest.raises(WappiError):
        await client.get_status()
    await client.close()
    registry = metrics.registry
    assert registry.get_sample_value("gateway_wappi_request_seconds_count", {"endpoint": "get/status"}) == 1
    assert (
        registry.get_sample_value(
            "gateway_wappi_errors_total", {"endpoint": "get/status", "kind": "transient"}
        )
        == 1
    )


@respx.mock
async def test_a_send_whose_answer_timed_out_is_not_repeated_it_may_have_gone_out(wappi):
    route = respx.post(f"{BASE}/api/sync/message/send").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(WappiError) as caught:
        await wappi.send_text("77011234567", "hi")
    assert route.call_count == 1
    assert caught.value.transient and caught.value.maybe_done


@respx.mock
async def test_a_send_that_never_left_is_repeated(wappi):
    route = respx.post(f"{BASE}/api/sync/message/send").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={"status": "done", "id": 7})]
    )
    assert (await wappi.send_text("77011234567", "hi")).message_id == "7"
    assert route.call_count == 2


@respx.mock
@pytest.mark.parametrize("answer", ["[1, 2]", "null", "42", '"done"', "<html>Service Unavailable</html>"])
async def test_an_answer_that_is_no_json_object_is_a_transient_error(wappi, answer):
    route = respx.get(f"{BASE}/api/sync/chats/get").respond(200, text=answer)
    with pytest.raises(WappiError) as caught:
        await wappi.list_chats()
    assert caught.value.transient and caught.value.status == 200
    assert route.call_count == 4  # retried like any transient failure


@respx.mock
@pytest.mark.parametrize("answer", [{"status": "done"}, {"status": "done", "messages": {"0": {"id": "A"}}}])
async def test_a_message_list_that_is_missing_or_no_list_is_not_taken_for_an_empty_chat(wappi, answer):
    respx.get(f"{BASE}/api/sync/messages/get").respond(json=answer)
    with pytest.raises(WappiError, match="unexpected answer") as caught:
        await wappi.get_messages("77011234567@c.us")
    assert caught.value.transient and caught.value.status == 200


@respx.mock
async def test_odd_field_types_cost_the_field_not_the_message(wappi):
    respx.get(f"{BASE}/api/sync/messages/get").respond(
        json={
            "status": "done",
            "messages": [
                {"id": 12345, "body": ["no", "text"], "time": "soon", "from": 77011234567, "is_me": False},
                {"id": "B", "body": "ok", "time": 1e30, "senderName": {"x": 1}, "type": "chat"},
                {"id": None, "body": "no id"},
                {"id": "C", "is_me": "perhaps"},  # could be our own message: skipped, never guessed
                "just a string",
            ],
        }
    )
    messages = await wappi.get_messages("77011234567@c.us")
    assert [(m.id, m.body, m.time, m.from_, m.sender_name) for m in messages] == [
        ("12345", None, None, "77011234567", None),
        ("B", "ok", None, None, None),
    ]


@respx.mock
@pytest.mark.parametrize(
    ("answer", "expected"),
    [({"status": "done", "message_id": {"x": 1}, "id": 99}, "99"), ({"status": ["done"], "id": True}, None)],
)
async def test_odd_send_answers_still_read_as_sent(wappi, answer, expected):
    respx.post(f"{BASE}/api/sync/message/send").respond(json=answer)
    assert (await wappi.send_text("77011234567", "hi")).message_id == expected


@respx.mock
async def test_a_page_of_nothing_but_unreadable_messages_is_an_error_not_an_empty_chat(wappi):
    respx.get(f"{BASE}/api/sync/messages/get").respond(json={"status": "done", "messages": [{"id": []}, 7]})
    with pytest.raises(WappiError, match="no readable message") as caught:
        await wappi.get_messages("77011234567@c.us")
    assert caught.value.transient and caught.value.status == 200
