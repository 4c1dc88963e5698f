"""A client who writes Kazakh is answered in Kazakh, one who writes Russian in Russian: the language is told
from each message, kept on the contact (the latest clear signal wins), asked of Gemini, and every text the
code writes to the client exists in both. Texts to managers stay Russian."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models import Contact, ScheduledCall
from services.call_calendar import CallPolicy, book_call
from services.call_changes import cancel_scheduled_call, move_scheduled_call
from services.follow_up_arming import arm_follow_ups
from services.follow_up_scheduler import send_due_touches
from services.language import detect_language
from services.reminders import send_due_reminders
from tests.conftest import WEDNESDAY_3PM, fixed_clock, handle, incoming
from tests.test_managers import AIGERIM, TWO, calendar, notifications, to_clients
from utils.timezone_helper import ASTANA, WorkingHours

HOURS = WorkingHours(10, 18, "Asia/Almaty")
ONE_CALENDAR = CallPolicy(managers=(), reminder=timedelta(minutes=60))
BEFORE = WEDNESDAY_3PM - timedelta(minutes=1)
# What each client writes first: a price question in their language.
ASKS = {
    "ru": "Здравствуйте! Сколько стоит тариф Старт?",
    "kk": "Сәлеметсіз бе! Старт тарифінің бағасы қанша?",
}


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Сәлеметсіз бе! Тариф бағасы қанша?", "kk"),
        ("Салеметсиз бе, канша турады?", "kk"),  # typed on a Russian keyboard
        ("Сәлеметсіз бе, доставка бар ма?", "kk"),  # Kazakh with a Russian word in it
        ("Иә, болады", "kk"),
        ("Жазбаңыз!", "kk"),
        ("Рахмет!", "kk"),
        ("Здравствуйте, сколько стоит тариф Старт?", "ru"),
        ("Рахмет, а сколько стоит доставка?", "ru"),  # Russian with a Kazakh thank-you
        ("Да, подходит", "ru"),
        ("ok", None),
        ("12:00", None),
        ("👍🙏", None),
        ("[изображение]", None),  # the gateway's placeholder, not the client's words
        ("(не удалось распознать голосовое сообщение)", None),
    ],
)
def test_the_language_is_told_from_what_the_client_wrote(text, language):
    assert detect_language(text) == language


def sales(reply="…", **fields) -> dict:
    return {
        "reply": reply,
        "stance": "asking",
        "agreed_to_call": False,
        "proposed_call_time": None,
        "confirmed_call_time": False,
        **fields,
    }


async def language_of(db, phone: str) -> str | None:
    async with db() as session:
        return await session.scalar(select(Contact.language).where(Contact.phone_number == phone))


async def test_the_latest_clear_message_sets_the_language_gemini_is_asked_to_answer_in(agent, db, gemini):
    phone = "77016670001"
    said = [
        ("Сәлеметсіз бе! Бағасы қанша?", "kk"),
        ("ok", "kk"),  # says neither: the stored language stays
        ("Спасибо, а доставка у вас есть?", "ru"),  # the client switched
    ]
    for minute, (text, language) in enumerate(said):
        await handle(
            incoming(text, phone=phone, business="ЖШС Алтын", at=BEFORE.replace(minute=minute)), agent
        )

        assert await language_of(db, phone) == language
        words = {"kk": "Пиши на казахском языке", "ru": "Пиши на русском языке"}[language]
        assert words in gemini.prompts_of("sales")[-1]


async def test_a_message_stored_late_does_not_undo_a_newer_language(agent, db, gemini):
    phone = "77016670002"
    await handle(incoming("Сәлеметсіз бе! Бағасы қанша?", phone=phone, business="ЖШС Алтын"), agent)
    older = incoming("Здравствуйте", phone=phone, business="ЖШС Алтын", at=BEFORE - timedelta(hours=1))

    await handle(older, agent)

    assert await language_of(db, phone) == "kk"


@pytest.fixture(params=["ru", "kk"])
def language(request) -> str:
    return request.param


async def reply_to(agent, gemini, queues, language: str, phone: str, answer: dict, *, at=BEFORE) -> list:
    gemini.sales = lambda prompt: answer
    await handle(incoming(ASKS[language], phone=phone, business="ЖШС Алтын", at=at), agent)
    return await queues.outgoing()


CONFIRMATIONS = {
    "ru": "Отлично! Записал вас на 26.11.2026 в 11:00 (время Астаны). Наш менеджер Айгерим свяжется с вами "
    "по номеру +77016670011. До связи! 👍",
    "kk": "Керемет! Сізді қоңырауға жазып қойдым: 26.11.2026, сағат 11:00 (Астана уақытымен). Менеджеріміз "
    "Айгерим сізге +77016670011 нөміріне хабарласады. Байланыста болайық! 👍",
}


async def test_the_booking_confirmation_is_in_the_clients_language_and_the_manager_hears_in_russian(
    agent, gemini, queues, language
):
    with_managers = dataclasses.replace(agent, calls=TWO)
    booking = sales(stance="yes", agreed_to_call=True, proposed_call_time="2026-11-26T11:00")
    booking["confirmed_call_time"] = True
    gemini.sales = lambda prompt: (
        {"wants": "тариф", "size": "—", "objections": "—"} if "подготовиться к созвону" in prompt else booking
    )

    await handle(
        incoming(ASKS[language], phone="77016670011", business="ЖШС Алтын", at=BEFORE), with_managers
    )

    bodies = await queues.outgoing()
    [reply] = to_clients(bodies)
    assert reply["message_text"] == CONFIRMATIONS[language]
    [note] = notifications(bodies)
    assert note["message_text"].startswith("📞 Новый созвон: 26.11.2026 в 11:00 (время Астаны)")


OFFERS = {
    "outside": {
        "ru": "К сожалению, в это время мы не работаем: созвоны проходят Пн–Пт с 10:00 до 18:00. Могу "
        "предложить 27.11.2026 в 10:00 (пятница) по времени Астаны. Подходит?",
        "kk": "Өкінішке қарай, бұл уақытта біз жұмыс істемейміз: қоңыраулар дүйсенбі–жұма күндері "
        "10:00–18:00 аралығында өтеді. Астана уақытымен 27.11.2026, сағат 10:00 (жұма) ұсына аламын. "
        "Сізге ыңғайлы ма?",
    },
    "taken": {
        "ru": "К сожалению, это время уже занято. Могу предложить 26.11.2026 в 11:30 (четверг) по времени "
        "Астаны. Подходит?",
        "kk": "Өкінішке қарай, бұл уақыт бос емес. Астана уақытымен 26.11.2026, сағат 11:30 (бейсенбі) ұсына "
        "аламын. Сізге ыңғайлы ма?",
    },
    "unconfirmed": {
        "ru": "Могу предложить 26.11.2026 в 11:00 (четверг) по времени Астаны. Подходит?",
        "kk": "Астана уақытымен 26.11.2026, сағат 11:00 (бейсенбі) ұсына аламын. Сізге ыңғайлы ма?",
    },
    "ask_time": {
        "ru": "Какое время вам удобно? Мы работаем пн–пт 10:00–18:00 по Астане 📞",
        "kk": "Сізге қай уақыт ыңғайлы? Біз дүйсенбі–жұма күндері 10:00–18:00 аралығында жұмыс істейміз "
        "(Астана уақытымен) 📞",
    },
}


@pytest.mark.parametrize(
    ("case", "proposed", "confirmed", "model_text"),
    [
        ("outside", "2026-11-26T20:00", True, "Отлично, до вечера!"),
        ("taken", "2026-11-26T11:00", True, "Отлично, до завтра!"),
        # The client has not accepted the time: a reply naming another one gets the code's offer.
        ("unconfirmed", "2026-11-26T11:00", False, "Можем созвониться завтра в 12:00"),
        ("ask_time", "завтра утром", True, "Договорились!"),
    ],
)
async def test_the_codes_offers_and_questions_are_in_the_clients_language(
    agent, db, gemini, queues, language, case, proposed, confirmed, model_text
):
    if case == "taken":
        await client_with_call(db, "77016670020", "ru", datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA))
    agent = dataclasses.replace(agent, calls=ONE_CALENDAR)
    answer = sales(model_text, stance="yes", agreed_to_call=True, proposed_call_time=proposed)
    answer["confirmed_call_time"] = confirmed

    [reply] = await reply_to(agent, gemini, queues, language, "77016670021", answer)

    assert reply["message_text"] == OFFERS[case][language]


async def test_a_client_who_cannot_make_it_is_offered_another_slot_in_their_language(
    agent, db, gemini, queues, language
):
    agent = dataclasses.replace(agent, calls=ONE_CALENDAR)
    phone = "77016670031"
    booking = sales(stance="yes", agreed_to_call=True, proposed_call_time="2026-11-26T11:00")
    booking["confirmed_call_time"] = True
    await reply_to(agent, gemini, queues, language, phone, booking, at=BEFORE - timedelta(minutes=5))
    cannot = {"ru": "Извините, завтра не смогу", "kk": "Кешіріңіз, ертең келе алмаймын"}
    gemini.sales = lambda prompt: sales("Жаль!", cannot_make_it=True)

    await handle(incoming(cannot[language], phone=phone, at=BEFORE), agent)

    [reply] = await queues.outgoing()
    expected = {
        "ru": "Понял вас, перенесём созвон. Могу предложить 26.11.2026 в 11:30 (четверг) по Астане. "
        "Подходит?",
        "kk": "Түсіндім, қоңырауды басқа уақытқа ауыстырайық. Астана уақытымен 26.11.2026, сағат 11:30 "
        "(бейсенбі) ұсына аламын. Сізге ыңғайлы ма?",
    }
    assert reply["message_text"] == expected[language]


HOLDING = {
    "ru": "Спасибо! Уточню детали и вернусь к вам в ближайшее время 😊",
    "kk": "Рахмет! Мәліметтерді нақтылап, жақын арада сізге қайта жазамын 😊",
}
PRICE_FALLBACK = {
    "ru": "Точную стоимость для вашего случая подтвердит наш менеджер 😊 Хотите, я запишу вас на короткий "
    "созвон с ним?",
    "kk": "Сіздің жағдайыңызға нақты бағаны менеджеріміз растайды 😊 Онымен қысқа қоңырауға жазып қояйын ба?",
}
DISCOUNT_FALLBACK = {
    "ru": "Скидки и специальные условия обсуждает наш менеджер — он подберёт для вас лучший вариант. Хотите, "
    "я запишу вас на короткий созвон с ним? 📞",
    "kk": "Жеңілдіктер мен арнайы шарттарды менеджеріміз талқылайды — ол сізге ең тиімді нұсқаны таңдап "
    "береді. Онымен қысқа қоңырауға жазып қояйын ба? 📞",
}
NEUTRAL_FALLBACK = {
    "ru": "С радостью отвечу на ваши вопросы 😊 Хотите, я запишу вас на короткий созвон с менеджером — он "
    "всё подробно расскажет?",
    "kk": "Сұрақтарыңызға қуана жауап беремін 😊 Менеджермен қысқа қоңырауға жазып қояйын ба — ол бәрін "
    "толық айтып береді?",
}
STOPPED = {
    "ru": "Хорошо, больше не будем вам писать. Если понадобится помощь — просто напишите нам 🙏",
    "kk": "Жақсы, енді сізге жазбаймыз. Көмек керек болса — бізге жазыңыз 🙏",
}


@pytest.mark.parametrize(
    ("model_answer", "expected"),
    [
        ({"nonsense": True}, HOLDING),  # Gemini gives no usable answer
        (sales("Тариф Старт стоит 4 500 тенге"), PRICE_FALLBACK),  # an invented price
        (sales("Только для вас скидка 50%!"), DISCOUNT_FALLBACK),  # an invented discount
        (sales("С нами ваши продажи вырастут на 300%"), NEUTRAL_FALLBACK),  # an invented figure
        (sales("Хорошо", opt_out=True), STOPPED),  # the model read a stop request code did not
    ],
)
async def test_the_codes_own_replies_are_in_the_clients_language(
    agent, gemini, queues, language, model_answer, expected
):
    [reply] = await reply_to(agent, gemini, queues, language, "77016670041", model_answer)

    assert reply["message_text"] == expected[language]


PROMISES = {
    "ru": "Хороший вопрос! Уточню у менеджера — он напишет вам завтра с 10:00 😊",
    "kk": "Жақсы сұрақ! Менеджерден нақтылаймын — ол сізге ертең жұмыс уақыты басталғанда (10:00) жазады 😊",
}


async def test_a_managers_promise_is_in_the_clients_language_and_the_manager_reads_it_in_russian(
    agent, gemini, queues, language
):
    evening = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # Wednesday 19:00 in Astana
    with_managers = dataclasses.replace(agent, calls=TWO, clock=fixed_clock(evening))

    bodies = await reply_to(with_managers, gemini, queues, language, "77016670051", sales(knowledge_gap=True))

    [reply] = to_clients(bodies)
    assert reply["message_text"] == PROMISES[language]
    [question] = notifications(bodies)
    assert question["message_text"].endswith("Клиенту обещан ответ завтра с 10:00.")


async def client_with_call(db, phone: str, language: str, at: datetime, policy=ONE_CALENDAR) -> ScheduledCall:
    async with db.begin() as session:
        contact = Contact(phone_number=phone, name="Ерлан", is_client=True, language=language)
        session.add(contact)
        await session.flush()
        return await book_call(session, contact, at, WEDNESDAY_3PM, HOURS, policy, "test")


REMINDERS = {
    "ru": "Напоминаем: 26.11.2026 в 11:00 (время Астаны) у вас созвон с нашим менеджером Айгерим 📞 "
    "До связи!",
    "kk": "Еске саламыз: 26.11.2026, сағат 11:00 (Астана уақытымен) менеджеріміз Айгерим сізге қоңырау "
    "шалады 📞 Байланыста болайық!",
}


async def test_the_clients_reminder_is_in_their_language_the_managers_in_russian(agent, db, queues, language):
    eleven = datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA)
    await client_with_call(db, "77016670061", language, eleven, TWO)

    assert await send_due_reminders(calendar(agent, eleven - timedelta(minutes=60))) == 1

    bodies = await queues.outgoing()
    [to_client] = to_clients(bodies)
    assert to_client["message_text"] == REMINDERS[language]
    [to_manager] = notifications(bodies)
    assert to_manager["phone_number"] == AIGERIM.phone
    assert to_manager["message_text"].startswith("⏰ Через 60 мин созвон: 26.11.2026 в 11:00")


CHANGES = {
    "cancelled": {
        "ru": "Созвон 26.11.2026 в 11:00 (время Астаны) отменён. Если захотите назначить новое время — "
        "просто напишите нам 😊",
        "kk": "26.11.2026, сағат 11:00 (Астана уақытымен) белгіленген қоңырау болдырылмады. Жаңа уақыт "
        "белгілегіңіз келсе — бізге жазыңыз 😊",
    },
    "moved": {
        "ru": "Созвон перенесён на 27.11.2026 в 15:00 (время Астаны). Наш менеджер свяжется с вами по номеру "
        "+77016670072 👍",
        "kk": "Қоңырау басқа уақытқа ауыстырылды: 27.11.2026, сағат 15:00 (Астана уақытымен). Менеджеріміз "
        "сізге +77016670072 нөміріне хабарласады 👍",
    },
}


async def test_an_operators_cancel_or_move_is_told_to_the_client_in_their_language(db, language):
    eleven = datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA)
    cancelled = await client_with_call(db, "77016670071", language, eleven)
    moved = await client_with_call(db, "77016670072", language, eleven + timedelta(hours=1))

    async with db.begin() as session:
        one = await cancel_scheduled_call(
            session, cancelled.id, "заболел", WEDNESDAY_3PM, HOURS, ONE_CALENDAR
        )
        to = datetime(2026, 11, 27, 15, 0, tzinfo=ASTANA)
        two = await move_scheduled_call(session, moved.id, to, WEDNESDAY_3PM, HOURS, ONE_CALENDAR)

    assert one.client_message.message_text == CHANGES["cancelled"][language]
    assert two.client_message.message_text == CHANGES["moved"][language]


SAFE_TOUCH = {
    "ru": "Добрый день! 😊 Напоминаю о нашем разговоре. Если остались вопросы — я на связи.",
    "kk": "Қайырлы күн! 😊 Біздің әңгімемізді еске саламын. Сұрақтарыңыз қалса — мен байланыстамын.",
}


async def test_a_touch_is_asked_for_and_falls_back_in_the_clients_language(
    follow_ups, agent, db, gemini, queues, language
):
    # The bot answers on Wednesday at 15:00 and the client goes silent: touch 1 is due on Thursday at 15:00.
    await reply_to(agent, gemini, queues, language, "77016670081", sales("Тариф Старт — 15 000 ₸ в месяц"))
    gemini.sales = lambda prompt: {"nonsense": True}  # no usable touch: the code's own goes out
    thursday = datetime(2026, 11, 26, 15, 30, tzinfo=ASTANA)
    async with db.begin() as session:
        await arm_follow_ups(session, intervals=follow_ups.intervals, hours=follow_ups.hours, now=thursday)

    [touch] = await send_due_touches(dataclasses.replace(follow_ups, clock=fixed_clock(thursday)))

    assert touch.message.message_text == SAFE_TOUCH[language]
    words = {"kk": "Пиши на казахском языке", "ru": "Пиши на русском языке"}[language]
    assert words in [p for p in gemini.prompts if "КАСАНИЕ #1" in p][-1]
