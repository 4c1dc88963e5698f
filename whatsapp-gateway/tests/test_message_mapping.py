"""Real Wappi payloads (tests/wappi_samples) become contract bodies, or are skipped for a reason.

status_broadcast, channel_post, group_message and the lid_* samples are incoming_dialog.json with the
chat ids WhatsApp uses for Status, channels, groups and hidden numbers."""

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.chat_rules import message_verdict
from services.message_mapping import to_forward
from services.wappi_models import WappiMessage
from tests.conftest import CONTRACTS

SAMPLES = Path(__file__).resolve().parent / "wappi_samples"  # copies of real Wappi payloads
ALMATY = ZoneInfo("Asia/Almaty")
NOW = datetime(2026, 8, 4, 12, 0, tzinfo=UTC)  # after every sample: later times are not believed
WHITELIST = {"77752837306", "77018855588", "77088098009"}


def sample(name: str) -> WappiMessage:
    payload = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return WappiMessage.model_validate(payload["messages"][0] if "messages" in payload else payload)


def test_a_customer_text_becomes_the_spec_incoming_body():
    message = sample("incoming_dialog")
    verdict = message_verdict(message, message.chat_id, WHITELIST)
    assert verdict.reason is None
    fwd = to_forward(message, verdict.chat_id, verdict.phone, ALMATY, NOW)
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
    assert CONTRACTS["incoming_messages"].errors(fwd.body) == []


def test_a_voice_note_becomes_a_voice_transcription_body():
    message = sample("voice_ptt")
    verdict = message_verdict(message, message.chat_id, WHITELIST)
    fwd = to_forward(message, verdict.chat_id, verdict.phone, ALMATY, NOW)
    assert fwd.target_queue == "voice" and fwd.is_voice
    assert fwd.body["voice_url"].startswith("https://wapi-uploads7d.storage.yandexcloud.net/")
    assert fwd.body["phone_number"] == "996500000001"  # from chatId, never from the @lid id
    assert fwd.body["timestamp"] == "2026-08-03T18:42:06+05:00"
    assert CONTRACTS["voice_transcription"].errors(fwd.body) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("group_reaction", "group"),
        ("group_message", "group"),
        ("status_broadcast", "status_broadcast"),
        ("channel_post", "channel"),
        ("lid_hidden", "hidden_number"),
        ("delivery_status", "delivery_status"),
        ("own_echo", "own_message"),
    ],
)
def test_what_is_not_a_persons_message_is_skipped(name, reason):
    message = sample(name)
    assert message_verdict(message, message.chat_id or "996500494009@c.us", WHITELIST).reason == reason


def test_a_status_update_is_skipped_even_when_its_from_is_a_customers_number():
    message = sample("status_broadcast")
    assert message.from_ == "996500494009@c.us"
    assert message_verdict(message, "status@broadcast", WHITELIST).reason == "status_broadcast"
    # Listed under a person's chat, the message's own chatId still tells.
    assert message_verdict(message, "996500494009@c.us", WHITELIST).reason == "status_broadcast"


@pytest.mark.parametrize("name", ["lid_with_phone", "lid_contact_phone"])
def test_a_hidden_number_chat_with_the_real_phone_goes_to_the_persons_own_chat(name):
    message = sample(name)
    verdict = message_verdict(message, "185463918842095@lid", WHITELIST)
    assert (verdict.reason, verdict.phone, verdict.chat_id) == (None, "996500494009", "996500494009@c.us")
    fwd = to_forward(message, verdict.chat_id, verdict.phone, ALMATY, NOW)
    assert (fwd.body["chat_id"], fwd.body["phone_number"]) == ("996500494009@c.us", "996500494009")
    assert CONTRACTS["incoming_messages"].errors(fwd.body) == []


@pytest.mark.parametrize(
    "chat_id", ["0@s.whatsapp.net", "996500494009", "12345@c.us", "996500494009@unknown", "@c.us"]
)
def test_a_chat_whose_id_is_not_a_persons_phone_is_skipped(chat_id):
    message = sample("incoming_dialog").model_copy(update={"chat_id": None})
    assert message_verdict(message, chat_id, WHITELIST).reason == "not_a_person"


@pytest.mark.parametrize("sender", ["77752837306@c.us", "87752837306@c.us"])
def test_a_whitelisted_sender_is_skipped_also_in_a_hidden_number_chat(sender):
    message = sample("lid_with_phone").model_copy(update={"from_": sender})
    assert message_verdict(message, "185463918842095@lid", WHITELIST).reason == "whitelisted"


def test_a_reaction_in_a_persons_chat_is_skipped_as_a_reaction():
    message = sample("incoming_dialog").model_copy(update={"type": "reaction", "body": "👍"})
    assert message_verdict(message, message.chat_id, WHITELIST).reason == "reaction"


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
    assert CONTRACTS["incoming_messages"].errors(fwd.body) == []


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
