"""A client who writes Kazakh, with the whole system running for another business than the sample one:
ТОО «Ақ Жол Логистика», a carrier with a knowledge base of its own, on Tuesday 2026-12-08 from 11:00 in
Astana. The client asks, books a call, gets its confirmation and reminder, sends a voice note, and opts out,
all in Kazakh; a silent one gets a Kazakh touch; Gemini is told the configured business's name and never the
sample's, and a Russian client of the same business is answered in Russian."""

import asyncio
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from pdfs import text_pdf

from fixtures import running_system
from system import ADMIN_KEY, fetch, follow_ups_of, move_conversation_back

ASTANA = ZoneInfo("Asia/Almaty")
TUESDAY_11 = datetime(2026, 12, 8, 11, 0, tzinfo=ASTANA)
BUSINESS = "ТОО «Ақ Жол Логистика»"
AIGERIM, DANIYAR = "77019990001", "77019990002"
MANAGERS = f"Айгерим:{AIGERIM},Данияр:{DANIYAR}"
KNOWLEDGE = (
    "Ақ Жол Логистика — грузоперевозки по Казахстану",
    "ТОО «Ақ Жол Логистика» (г. Алматы) с 2015 года перевозит грузы между городами Казахстана.",
    "Прайс-лист на доставку",
    "Доставка Алматы — Астана: 45 000 ₸ за тонну, срок 2 дня.",
    "Доставка Алматы — Шымкент: 38 000 ₸ за тонну, срок 1 день.",
    "Отдел продаж работает с понедельника по пятницу с 10:00 до 18:00 по времени Астаны.",
)
KAZAKH_LETTERS = re.compile("[әғқңөұүһі]", re.I)
# The client's language and the business's name reach Gemini: every prompt says them.
SAYS_KAZAKH = "Пиши на казахском языке"


def write_knowledge_base(folder: Path) -> Path:
    (folder / "prices.pdf").write_bytes(text_pdf(*KNOWLEDGE))
    return folder


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    knowledge = write_knowledge_base(tmp_path_factory.mktemp("ak_zhol_knowledge"))
    env = {
        "whatsapp-gateway": {"MANAGERS": MANAGERS},
        "ai-agent-service": {
            "BUSINESS_NAME": BUSINESS,
            "KNOWLEDGE_BASE_PATH": str(knowledge),
            "MANAGERS": MANAGERS,
            # The scripted client answers within seconds: the auto-responder check is set below its pace.
            "LOOP_REPLY_SECONDS": "1.5",
        },
    }
    with running_system(TUESDAY_11, env) as system:
        yield system


def agent_api(system) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.agent.url, headers={"X-API-Key": ADMIN_KEY}, timeout=10)


async def says(customer, phone: str, text: str, answers: int, **fields) -> str:
    """The client writes (at a person's pace, slower than LOOP_REPLY_SECONDS) and gets their next answer."""
    await asyncio.sleep(2)
    await customer.write(phone, text, **fields)
    return (await customer.wait_sent_to(phone, answers))[answers - 1]["body"]


async def manager_heard(customer, starts: str, phone: str) -> str:
    for _ in range(60):
        for manager in (AIGERIM, DANIYAR):
            found = [m["body"] for m in await customer.sent_to(manager) if phone in m["body"]]
            if found := [body for body in found if body.startswith(starts)]:
                return found[0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"no manager heard {starts!r} about +{phone}")


async def test_a_kazakh_client_asks_books_is_reminded_and_opts_out_all_in_kazakh(system, customer):
    phone = "77015550001"

    price = await says(
        customer,
        phone,
        "Сәлеметсіз бе! Алматыдан Астанаға бір тонна жүкті жеткізу қанша тұрады?",
        1,
        sender_name="Асель",
        business_name="ЖШС Алтын",
    )
    assert "45 000 ₸" in price and KAZAKH_LETTERS.search(price), price

    confirmation = await says(customer, phone, "Ертең сағат 11:00-де қоңырау шалуға болады ма?", 2)
    assert confirmation.startswith("Керемет! Сізді қоңырауға жазып қойдым: 09.12.2026, сағат 11:00 (Астана ")
    assert re.search(rf"Менеджеріміз (Айгерим|Данияр) сізге \+{phone} нөміріне хабарласады", confirmation)
    # What the manager reads stays Russian.
    assert await manager_heard(customer, "📞 Новый созвон: 09.12.2026 в 11:00 (время Астаны)", phone)

    # As if the clock had reached an hour before the call.
    await fetch(
        system.agent.database_url,
        "UPDATE scheduled_calls SET reminder_due_at = $2 "
        "WHERE contact_id = (SELECT id FROM contacts WHERE phone_number = $1)",
        phone,
        system.now(),
    )
    reminder = (await customer.wait_sent_to(phone, 3))[2]["body"]
    assert reminder.startswith("Еске саламыз: 09.12.2026, сағат 11:00 (Астана уақытымен) менеджеріміз ")
    assert reminder.endswith("сізге қоңырау шалады 📞 Байланыста болайық!")

    stopped = await says(customer, phone, "Рахмет, бұдан былай жазбаңыз", 4)
    assert stopped == "Жақсы, енді сізге жазбаймыз. Көмек керек болса — бізге жазыңыз 🙏"

    async with agent_api(system) as api:
        contact = (await api.get(f"/contacts/{phone}")).json()
    assert contact["language"] == "kk" and contact["opted_out_at"] is not None


async def test_a_kazakh_voice_note_is_transcribed_and_answered_in_kazakh(system, customer):
    phone = "77015550002"
    spoken = "Сәлеметсіз бе, Алматыдан Шымкентке жеткізу қанша тұрады?"

    answer = await says(
        customer, phone, "", 1, type="ptt", transcript=spoken, sender_name="Ерлан", business_name="ЖК Ерлан"
    )

    assert "38 000 ₸" in answer and KAZAKH_LETTERS.search(answer), answer
    [stored] = await fetch(
        system.agent.database_url,
        "SELECT voice_transcription FROM messages WHERE phone_number = $1 AND NOT is_from_bot",
        phone,
    )
    assert stored["voice_transcription"] == spoken
    transcription = (await customer.prompts("transcription"))[-1]
    assert "на казахском" in transcription and "Ничего не переводи" in transcription


async def test_a_silent_kazakh_client_gets_a_kazakh_touch(system, customer):
    phone = "77015550003"
    await says(customer, phone, "Сәлеметсіз бе! Жеткізу бағасы қанша?", 1, business_name="ЖШС Береке")

    # A day of silence: touch 1 fell due at 10:00 today, inside working hours, so it goes now.
    await move_conversation_back(system.agent.database_url, phone, hours=25)
    await follow_ups_of(system.agent.database_url, phone)
    touch = (await customer.wait_sent_to(phone, 2))[1]["body"]

    assert KAZAKH_LETTERS.search(touch), touch
    prompt = (await customer.prompts("follow_up"))[-1]  # the only client of this system chased
    assert SAYS_KAZAKH in prompt and f"компании {BUSINESS}." in prompt


async def test_gemini_is_told_the_configured_business_and_a_russian_client_is_answered_in_russian(
    system, customer
):
    phone = "77015550004"

    reply = await says(customer, phone, "Добрый день! Сколько стоит доставка Алматы — Астана?", 1)

    assert reply.startswith("Доставка Алматы — Астана: 45 000 ₸ за тонну")
    assert not KAZAKH_LETTERS.search(reply)
    sales = await customer.prompts("sales")
    assert sales and all(f"компании {BUSINESS}." in prompt for prompt in sales)
    assert "Пиши на русском языке" in sales[-1]
    assert any(SAYS_KAZAKH in prompt for prompt in sales)  # the Kazakh clients' turns before
    moderator = await customer.prompts("moderator")
    assert moderator and all(f"для компании {BUSINESS}." in prompt for prompt in moderator)
    for job in ("sales", "moderator", "follow_up", "call_summary"):
        assert not any("СкладПро" in prompt for prompt in await customer.prompts(job)), job
