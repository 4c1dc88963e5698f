"""`make demo`: a scripted morning of several customers against the sandbox, then what each of them saw
in WhatsApp and what the agent made of it. Starts its own copy of the system (fresh databases, own
queues), so it runs beside `make run` without touching its data. The morning is Tuesday 8 December 2026,
from 10:00 in Astana, whatever the machine's clock says. KEEP=1 leaves it running afterwards, printing the
operator console's address and password, until Ctrl-C."""

import asyncio
import os
import secrets
import signal
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
    "77011230008": "Сауле (ТОО «Береке»), ответил владелец",
    "77011230009": "Тимур (ИП Ахметов), попросил не писать",
    "77011230010": "Асель (ТОО «Жол»), вопрос не из базы знаний",
    "77011230011": "Нұрлан (ЖШС «Алтын»), пишет по-казахски",
}
MANAGERS = {"77019990001": "Айгерим", "77019990002": "Данияр"}
SETTINGS = {
    "whatsapp-gateway": {"MANAGERS": ",".join(f"{n}:{p}" for p, n in MANAGERS.items())},
    "ai-agent-service": {
        "MANAGERS": ",".join(f"{n}:{p}" for p, n in MANAGERS.items()),
        # The console (KEEP=1 leaves it running): its health page reads the gateway, "try it as a customer"
        # writes to the sandbox.
        "GATEWAY_URL": "{gateway}",
        "SANDBOX_URL": "{sandbox}",
        # The scripted customers answer within a second or two, as an auto-responder would: the loop
        # breaker's threshold is set below their pace.
        "LOOP_REPLY_SECONDS": "1.5",
        "BITRIX24_WEBHOOK_URL": "{sandbox}/rest/1/demo-webhook/",
    },
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

    say("7. Владелец отвечает клиенту сам с телефона — бот отходит в сторону")
    await customer.write(
        "77011230008", "Здравствуйте! Есть ли у вас обучение сотрудников?", business_name="ТОО Береке"
    )
    await customer.wait_sent_to("77011230008", 1)
    await customer.write(
        "77011230008",
        "Сауле, добрый день! Это Ерлан, директор. Проведём обучение сами, бесплатно.",
        from_me=True,
    )
    await asyncio.sleep(2)
    await customer.write("77011230008", "Отлично, спасибо!")
    await asyncio.sleep(3)
    say("   …прошло 12 часов без сообщений владельца: бот снова отвечает")
    await fetch(
        system.agent.database_url,
        "UPDATE contacts SET paused_until = $2 WHERE phone_number = $1",
        "77011230008",
        system.now(),
    )
    await customer.write("77011230008", "А сколько длится внедрение?")
    await customer.wait_sent_to("77011230008", 2)

    say("8. Клиент просит больше не писать — одно подтверждение, и касаний больше не будет")
    await customer.write(
        "77011230009", "Добрый день, сколько стоит тариф Бизнес?", business_name="ИП Ахметов"
    )
    await customer.wait_sent_to("77011230009", 1)
    await customer.write("77011230009", "Больше не пишите мне!")
    await customer.wait_sent_to("77011230009", 2)
    await move_conversation_back(system.agent.database_url, "77011230009", hours=25)

    say("9. Вопрос, на который в базе знаний нет ответа, уходит менеджеру")
    await customer.write("77011230010", "Франшиза у вас есть?", business_name="ТОО Жол")
    await customer.wait_sent_to("77011230010", 1)
    await manager_told_about(customer, "77011230010")

    say("10. Клиент пишет по-казахски — бот отвечает и записывает на созвон по-казахски")
    await customer.write(
        "77011230011",
        "Сәлеметсіз бе! Старт тарифінің бағасы қанша?",
        sender_name="Нұрлан",
        business_name="ЖШС Алтын",
    )
    await customer.wait_sent_to("77011230011", 1)
    await customer.write("77011230011", "Ертең сағат 15:00-де қоңырау шалуға болады ма?")
    await customer.wait_sent_to("77011230011", 2)
    await manager_told_about(customer, "77011230011")  # in Russian, before the restarts below

    say("11. Шлюз и агент перезапускаются посреди разговора")
    system.gateway.kill()
    system.agent.kill()
    await customer.write("77011230001", "А перенос данных из 1С сколько стоит?")
    system.agent.start()
    system.gateway.start()
    await customer.wait_sent_to("77011230001", 4)


async def manager_told_about(customer: Sandbox, phone: str) -> None:
    for _ in range(60):
        for manager in MANAGERS:
            if any(phone in m["body"] for m in await customer.sent_to(manager)):
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"no manager was told about +{phone}")


async def print_chats(customer: Sandbox) -> None:
    say("\n════════ WhatsApp глазами клиентов ════════")
    chats = [(f"+{phone} · {who}", phone) for phone, who in LEADS.items()]
    chats.append(("рабочая группа", GROUP_CHAT))
    for title, chat_id in chats:
        chat = (await customer.http.get(f"/sandbox/chats/{chat_id}")).json()
        say(f"\n── {title}")
        for message in chat["messages"]:
            at = datetime.fromisoformat(message["timestamp"]).strftime("%H:%M")
            author = (
                ("Бот     " if message["from_where"] == "api" else "Владелец")
                if message["is_me"]
                else "Клиент  "
            )
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
    pauses = {"operator_replied": "ответил человек", "manual": "вручную", "send_budget": "лимит сообщений"}
    pauses["loop_suspected"] = "похоже на автоответчик"
    say("\n════════ Контакты ════════")
    for c in contacts:
        confidence = c["classification_confidence"]
        say(
            f"  +{c['phone_number']:<12} {labels[c['is_client']]:<10} "
            f"{'' if confidence is None else f'{confidence:.2f}'}  {c['classification_reasoning'] or ''}"
        )
        if c["opted_out_at"]:
            say("                 попросил не писать: касаний больше не будет")
        elif c["pause_reason"]:
            until = c["paused_until"] and datetime.fromisoformat(c["paused_until"]).astimezone(ASTANA)
            if until is None or until > system.now():
                till = f"до {until:%d.%m %H:%M}" if until else "пока не снимут"
                say(f"                 бот на паузе ({pauses[c['pause_reason']]}) {till}")
            else:
                say("                 отвечал человек; пауза закончилась, бот снова отвечает")
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
                if d["kind"] in ("guarded", "handed_over") and d["model_text"]:
                    say(f"  +{phone}: модель хотела отправить «{d['model_text']}»")
                    say(f"      почему нет: {d['reason']}")
                    say(f"      клиент получил: «{d['sent_text']}»")
    forwarded = await fetch(
        system.gateway.database_url,
        "SELECT count(*) AS n FROM message_logs WHERE phone_number = '77752837306'",
    )
    say(f"\nСообщений с личного номера, переданных агенту: {forwarded[0]['n']}")


async def wait_for_sends(system: System) -> None:
    """Until the gateway has sent everything: MAX_SENDS_PER_MINUTE keeps some sends waiting their turn."""
    async with httpx.AsyncClient(base_url=system.gateway.url, headers={"X-API-Key": ADMIN_KEY}) as api:
        for _ in range(180):
            stats = (await api.get("/stats")).json()
            if stats["send_queue"]["waiting"] == 0 and not stats["queue_size"].get("outgoing"):
                return
            await asyncio.sleep(1)


async def print_managers_phones(system: System, customer: Sandbox) -> None:
    await wait_for_sends(system)
    say("\n════════ Телефоны менеджеров этим утром ════════")
    for phone, name in MANAGERS.items():
        say(f"\n── {name} (+{phone})")
        received = await customer.sent_to(phone)
        for message in received:
            say("   " + message["body"].replace("\n", "\n   "))
        if not received:
            say("   (ничего)")
    portal = (await customer.http.get("/sandbox/bitrix24")).json()
    say("\n════════ Bitrix24 ════════")
    for lead in portal["leads"]:
        calls = [a for a in portal["activities"] if a["OWNER_ID"] == lead["ID"]]
        planned = "".join(f"; звонок {a['START_TIME']}" for a in calls)
        say(f"  лид {lead['ID']}: {lead['TITLE']}, {lead['PHONE'][0]['VALUE']}{planned}")


async def keep_running(system: System, password: str) -> None:
    """KEEP=1: the system stays up with the morning's conversations for the console, until Ctrl-C."""
    console = f"{system.agent.url}/console"
    say("\n════════ Консоль оператора ════════")
    say(f"  {console}   пароль: {password}")
    say(f"  попробовать как клиент: {console}/try")
    say("  Система работает, пока не нажмёте Ctrl-C.")
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()


async def main() -> None:
    system = System(moment=MORNING)
    keep = os.environ.get("KEEP", "") not in ("", "0")
    password = secrets.token_urlsafe(9)
    settings = {name: dict(values) for name, values in SETTINGS.items()}
    settings["ai-agent-service"]["CONSOLE_PASSWORD"] = password
    say("Запускаю sandbox, whatsapp-gateway и ai-agent-service (утро вторника, 8 декабря 2026)…")
    system.start(settings)
    customer = Sandbox(system.sandbox_url)
    try:
        await play_morning(system, customer)
        await print_chats(customer)
        await print_agent_view(system)
        await print_managers_phones(system, customer)
        if keep:
            await keep_running(system, password)
    finally:
        await customer.http.aclose()
        await asyncio.to_thread(system.stop)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
