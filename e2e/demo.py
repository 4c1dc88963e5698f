"""`make demo`: a scripted morning of several customers against the sandbox, then what each of them saw
in WhatsApp and what the agent made of it. Starts its own copy of the system (fresh databases, own
queues), so it runs beside `make run` without touching its data. The morning is Tuesday 8 December 2026,
from 10:00 in Astana, whatever the machine's clock says."""

import asyncio
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from system import ADMIN_KEY, Sandbox, System, fetch, follow_ups_of, move_conversation_back

ASTANA = ZoneInfo("Asia/Almaty")
LEADS = {
    "77011230001": "Айгерим (ТОО «Альфа Трейд»)",
    "77011230002": "Ерлан (ИП Сапаров), голосовое",
    "77011230003": "Спамер",
    "77752837306": "Личный номер владельца (whitelist)",
    "77011230005": "Марат (ТОО «Вектор»), замолчал",
    "77011230006": "Дана (ТОО «Ромашка»), отказ",
    "77011230007": "Олжас (ТОО «Гамма»), модель придумала цену",
}
MORNING = datetime(2026, 12, 8, 10, 0, tzinfo=ZoneInfo("Asia/Almaty"))
INVENTED_PRICE = {
    "reply": "Для вас тариф Старт всего 4 500 тенге в месяц 😊",
    "stance": "asking",
    "agreed_to_call": False,
    "proposed_call_time": None,
    "confirmed_call_time": False,
}
GROUP_WRITER = "77011230004"
GROUP_CHAT = "77011230004-1764000000@g.us"
KINDS = {"ptt": "голосовое сообщение", "image": "изображение", "document": "документ"}


def say(text: str = "") -> None:
    print(text, flush=True)


async def play_morning(system: System, customer: Sandbox) -> None:
    say("1. Лид спрашивает цену")
    await customer.write(
        "77011230001",
        "Добрый день! Сколько стоит тариф Старт для нашего склада?",
        sender_name="Айгерим",
        business_name="ТОО Альфа Трейд",
    )
    await customer.wait_sent_to("77011230001", 1)

    say("2. Лид соглашается на созвон в 20:00, бот предлагает рабочее время, лид подтверждает")
    await customer.write("77011230001", "Давайте созвонимся завтра в 20:00")
    await customer.wait_sent_to("77011230001", 2)
    await customer.write("77011230001", "Да, подходит")
    await customer.wait_sent_to("77011230001", 3)

    say("3. Голосовое сообщение")
    await customer.write(
        "77011230002",
        type="ptt",
        sender_name="Ерлан",
        business_name="ИП Сапаров",
        transcript="Здравствуйте, сколько стоит интеграция с Kaspi для тарифа Старт?",
    )
    await customer.wait_sent_to("77011230002", 1)

    say("4. Спам, личный номер из whitelist и групповой чат")
    await customer.write("77011230003", "Заработок от 100 000 ₸ в день! Подпишись на канал http://easy.money")
    await customer.write("77752837306", "Привет, это я. Перезвони, как освободишься")
    await customer.write(
        GROUP_WRITER, "Коллеги, кто идёт на обед?", group=True, group_id=GROUP_CHAT, sender_name="Коллега"
    )

    say("5. Лид замолкает после ответа бота; другой лид отказывается")
    await customer.write(
        "77011230005", "Добрый день, какие у вас тарифы?", sender_name="Марат", business_name="ТОО Вектор"
    )
    await customer.wait_sent_to("77011230005", 1)
    await customer.write(
        "77011230006",
        "Здравствуйте, сколько стоит тариф Бизнес?",
        sender_name="Дана",
        business_name="ТОО Ромашка",
    )
    await customer.wait_sent_to("77011230006", 1)
    await customer.write("77011230006", "Нет, не интересно, спасибо")
    await customer.wait_sent_to("77011230006", 2)
    say("   …прошли сутки (время разговоров сдвинуто назад): Марату приходит первое касание follow-up")
    for phone in ("77011230005", "77011230006"):
        await move_conversation_back(system.agent.database_url, phone, hours=25)
    # Silent since yesterday 10:00: touch 1 fell due at 10:00 today, inside working hours, so it goes now.
    await follow_ups_of(system.agent.database_url, "77011230005")
    await customer.wait_sent_to("77011230005", 2)

    say("6. Модель придумывает цену — код её не пропускает")
    await customer.script("дешевле", INVENTED_PRICE)
    await customer.write(
        "77011230007", "А можно тариф Старт подешевле?", sender_name="Олжас", business_name="ТОО Гамма"
    )
    await customer.wait_sent_to("77011230007", 1)

    say("7. Шлюз и агент перезапускаются посреди разговора")
    system.gateway.kill()
    system.agent.kill()
    await customer.write("77011230001", "А перенос данных из 1С сколько стоит?")
    system.agent.start()
    system.gateway.start()
    await customer.wait_sent_to("77011230001", 4)


async def print_chats(customer: Sandbox) -> None:
    say("\n════════ WhatsApp глазами клиентов ════════")
    chats = [(f"+{phone} · {who}", phone) for phone, who in LEADS.items()]
    chats.append(("рабочая группа", GROUP_CHAT))
    for title, chat_id in chats:
        chat = (await customer.http.get(f"/sandbox/chats/{chat_id}")).json()
        say(f"\n── {title}")
        for message in chat["messages"]:
            at = datetime.fromisoformat(message["timestamp"]).strftime("%H:%M")
            author = "Бот   " if message["is_me"] else "Клиент"
            body = (
                message["body"]
                if message["type"] == "chat"
                else f"[{KINDS.get(message['type'], message['type'])}]"
            )
            say(f"   {at} {author}: {body}")
        if not any(m["is_me"] for m in chat["messages"]):
            say("   (бот не отвечал)")


async def print_agent_view(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.agent.url, headers={"X-API-Key": ADMIN_KEY}) as api:
        contacts = (await api.get("/contacts", params={"limit": 100})).json()["items"]
        calls = (await api.get("/scheduled-calls", params={"status": "scheduled"})).json()["items"]
        follow_ups = (await api.get("/follow-ups/active")).json()["items"]
    phones = {c["id"]: c["phone_number"] for c in contacts}
    labels = {True: "клиент", False: "не клиент", None: "неясно"}
    say("\n════════ Контакты ════════")
    for c in contacts:
        confidence = c["classification_confidence"]
        say(
            f"  +{c['phone_number']:<12} {labels[c['is_client']]:<10} "
            f"{'' if confidence is None else f'{confidence:.2f}'}  {c['classification_reasoning'] or ''}"
        )
    say("\n════════ Созвоны ════════")
    for call in calls:
        at = datetime.fromisoformat(call["scheduled_at"]).astimezone(ASTANA).strftime("%d.%m.%Y %H:%M")
        say(f"  +{phones.get(call['contact_id'])}  {at} (Астана)  {call['status']}")
    say("\n════════ Follow-up ════════")
    for f in follow_ups:
        due = datetime.fromisoformat(f["next_touch_at"]).astimezone(ASTANA).strftime("%d.%m.%Y %H:%M")
        say(f"  +{phones.get(f['contact_id'])}  следующее касание №{f['touch_number']}: {due} (Астана)")
    if not follow_ups:
        say("  (активных цепочек нет)")
    say("\n════════ Ответы, которые код не пропустил ════════")
    async with httpx.AsyncClient(base_url=system.agent.url, headers={"X-API-Key": ADMIN_KEY}) as api:
        for phone in LEADS:
            answer = await api.get(f"/contacts/{phone}/decisions")
            for d in answer.json()["items"] if answer.status_code == 200 else []:
                if d["kind"] == "guarded":
                    say(f"  +{phone}: модель хотела отправить «{d['model_text']}»")
                    say(f"      почему нет: {d['reason']}")
                    say(f"      клиент получил: «{d['sent_text']}»")
    forwarded = await fetch(
        system.gateway.database_url,
        "SELECT count(*) AS n FROM message_logs WHERE phone_number = '77752837306'",
    )
    say(f"\nСообщений с личного номера, переданных агенту: {forwarded[0]['n']}")


async def main() -> None:
    system = System(moment=MORNING)
    say("Запускаю sandbox, whatsapp-gateway и ai-agent-service (утро вторника, 8 декабря 2026)…")
    system.start()
    customer = Sandbox(system.sandbox_url)
    try:
        await play_morning(system, customer)
        await print_chats(customer)
        await print_agent_view(system)
    finally:
        await customer.http.aclose()
        await asyncio.to_thread(system.stop)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
