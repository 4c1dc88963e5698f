"""Real Wappi payloads (tests/wappi_samples) become contract bodies, or are skipped for a reason."""

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.queue import Contract
from services.message_mapping import customer_phone, skip_reason, to_forward
from services.wappi_models import WappiMessage

SAMPLES = Path(__file__).resolve().parent / "wappi_samples"  # copies of real Wappi payloads
ALMATY = ZoneInfo("Asia/Almaty")
NOW = datetime(2026, 8, 4, 12, 0, tzinfo=UTC)  # after every sample: later times are not believed


def sample(name: str) -> WappiMessage:
    payload = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return WappiMessage.model_validate(payload["messages"][0] if "messages" in payload else payload)


def test_a_customer_text_becomes_the_spec_incoming_body():
    message = sample("incoming_dialog")
    assert skip_reason(message, message.chat_id) is None
    fwd = to_forward(message, message.chat_id, customer_phone(message, message.chat_id), ALMATY, NOW)
    assert fwd.body == {
        "message_id": "AC93B92A1A00E53B3B8DCA319090F90A",
        "chat_id": "996500494009@c.us",
        "phone_number": "996500494009",
        "sender_name": "Al",
        "message_text": "Добрый день",
        "is_voice": False,
        "voice_url": None,
        "timestamp": "2026-06-23T22:17:58+05:00",
        "contact_info": {"FirstName": "Al", "FullName": "Al", "PushName": "Al", "BusinessName": None},
        "message_type": "text",
    }
    assert Contract.load("incoming").errors(fwd.body) == []


def test_a_voice_note_becomes_a_voice_transcription_body():
    message = sample("voice_ptt")
    fwd = to_forward(message, message.chat_id, customer_phone(message, message.chat_id), ALMATY, NOW)
    assert fwd.target_queue == "voice" and fwd.is_voice
    assert fwd.body["voice_url"].startswith("https://wapi-uploads7d.storage.yandexcloud.net/")
    assert fwd.body["phone_number"] == "996500000001"  # from chatId, never from the @lid id
    assert fwd.body["timestamp"] == "2026-08-03T18:42:06+05:00"
    assert Contract.load("voice").errors(fwd.body) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("group_reaction", "reaction message"),
        ("delivery_status", "delivery status"),
        ("own_echo", "own message"),
    ],
)
def test_what_is_not_a_customer_message_is_skipped(name, reason):
    message = sample(name)
    assert skip_reason(message, message.chat_id or "996500494009@c.us") == reason


def test_a_group_message_is_skipped():
    message = sample("incoming_dialog").model_copy(update={"chat_id": "996771771777-1568813854@g.us"})
    assert skip_reason(message, "996771771777-1568813854@g.us") == "group chat"


@pytest.mark.parametrize(
    ("kind", "caption", "file_name", "text", "message_type"),
    [
        ("image", "Вот фото товара", None, "Вот фото товара", "image"),
        ("image", None, None, "[изображение]", "image"),
        ("document", None, "price.pdf", "[документ: price.pdf]", "document"),
        ("video", "", None, "[видео]", "video"),
        ("poll_creation", None, None, "[сообщение неподдерживаемого типа]", "other"),
    ],
)
def test_media_is_forwarded_with_its_caption_or_a_placeholder(kind, caption, file_name, text, message_type):
    base = sample("incoming_dialog")
    # Wappi puts the media itself (base64) in body: it must never become the text.
    message = base.model_copy(
        update={"type": kind, "caption": caption, "file_name": file_name, "body": "/9j/4AAQ"}
    )
    fwd = to_forward(message, base.chat_id, "996500494009", ALMATY, NOW)
    assert (fwd.body["message_text"], fwd.body["message_type"]) == (text, message_type)
    assert Contract.load("incoming").errors(fwd.body) == []


def test_contact_info_is_assembled_from_the_address_book_and_push_names():
    message = sample("incoming_dialog").model_copy(
        update={"contact_name": "Иван Петров", "sender_name": "Ivan", "business_name": "ООО Компания"}
    )
    fwd = to_forward(message, message.chat_id, "996500494009", ALMATY, NOW)
    assert fwd.body["contact_info"] == {
        "FirstName": "Иван",
        "FullName": "Иван Петров",
        "PushName": "Ivan",
        "BusinessName": "ООО Компания",
    }
    assert fwd.body["sender_name"] == "Иван Петров"


def test_a_message_without_time_uses_its_iso_timestamp():
    message = sample("incoming_dialog").model_copy(update={"time": None})
    fwd = to_forward(message, message.chat_id, "996500494009", ALMATY, NOW)
    assert fwd.body["timestamp"] == "2026-06-23T22:17:58+05:00"
