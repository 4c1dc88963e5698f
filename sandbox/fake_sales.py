"""The fake sales agent: keyword rules over the sales prompt's sections, in the order the brief gives."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from sandbox.messages import ASTANA
from sandbox.prompt_sections import history_lines, section

_NOW = re.compile(r"ТЕКУЩАЯ ДАТА И ВРЕМЯ:\s*(\d{4}-\d{2}-\d{2})[ T](\d{1,2}):(\d{2})")
_NOT_A_TIME = r"(?!\s*(?:раз|%|процент|чел|шт|тыс|млн|₸|тенге|тг|дн|дней|недел|мес|год|лет|минут|сек|смен))"
_PREP_TIME = re.compile(
    r"(?<![\w])(?:в|во|к)\s+([01]?\d|2[0-3])(?:[:.]([0-5]\d))?(?![\d.:,]?\d)" + _NOT_A_TIME, re.I
)
_BARE_TIME = re.compile(r"(?<![\d.:])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])")
_AFTERNOON = re.compile(r"^\s*(?:час\w*\s+)?(?:дня|вечера)", re.I)
_TIME_CONTEXT = re.compile(r"^\s*(?:час|утра|дня|вечера)", re.I)
_DAY_OFFSETS = (
    (r"послезавтра", 2),
    (r"завтра", 1),
    (r"сегодня", 0),
    (r"бүрсігүні", 2),
    (r"ертең", 1),
    (r"бүгін", 0),
)
_WEEKDAYS = (
    r"понедельник\w*",
    r"вторник\w*",
    r"сред[ауые]",
    r"четверг\w*",
    r"пятниц\w*",
    r"суббот\w*",
    r"воскресень\w*",
)
_SLOT = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})(?:\s+в|,\s+сағат)\s+(\d{1,2}):(\d{2})")
_PRICE_LINE = re.compile(r"\d[\d\s.,]*\s*(?:₸|тенге|тг(?![а-яё]))", re.I)

# Each rule's Kazakh words come after its Russian ones.
_CONSENT = re.compile(
    r"(?<![\w])(?:да|подходит|давайте|давай|согласен|согласна|хорошо|ок|окей|ok|годится"
    r"|иә|ия|болады|жарайды|келісемін|ыңғайлы)(?![\w])",
    re.I,
)
_CALL = re.compile(r"созвон|позвон|поговорить|звонок|звонк|қоңырау|хабарлас|сөйлес", re.I)
_NO = re.compile(
    r"(?<![\w])нет(?![\w])|не интересно|неинтересно|не надо|не нужно|отказ"
    r"|(?<![\w])жоқ(?![\w])|қажет емес|керек емес|қызық емес",
    re.I,
)
_VAGUE = re.compile(r"посмотрю|подумаю|может быть|позже|не знаю|возможно|ойланамын|кейінірек|білмеймін", re.I)
_PRICE_QUESTION = re.compile(r"цен|стоим|сколько|прайс|тариф|баға|қанша|тұрады", re.I)
_CANNOT = re.compile(
    r"не смогу|не получится|не успею|не успеваю|үлгермеймін|келе алмаймын|қатыса алмаймын|мүмкіндігім жоқ",
    re.I,
)
# The sales prompt names the language to answer in: "Пиши на казахском языке".
_KAZAKH_REPLY = re.compile(r"Пиши на казахском языке")
CANNOT_REPLY = "Понял вас, давайте перенесём созвон 😊"
GAP_REPLY = "Хороший вопрос, уточню у коллег и вернусь с ответом 😊"
# What the agent puts in the knowledge section when no passage matches the question.
NOTHING_FOUND = "(нет подходящих сведений в базе знаний)"

ASK_TIME_REPLY = (
    "Отлично! Когда вам будет удобно созвониться? "
    "Наши менеджеры работают с 10:00 до 18:00 по времени Астаны 📞"
)
SPIN_QUESTION = "Расскажите, с какой задачей вы сейчас столкнулись? 😊"
NO_REPLY = "Понял вас, спасибо за ответ! Если в будущем понадобится помощь — будем рады помочь 😊"
VAGUE_REPLY = "Конечно, не торопитесь 😊 Если появятся вопросы — я на связи."
NO_PRICE_REPLY = (
    "Точную стоимость подготовит менеджер — он пришлет вам актуальный прайс-лист. "
    "Подскажите, какой объем вас интересует? 😊"
)
# What the fake answers when the prompt asks for Kazakh: the same rules, these words.
KAZAKH = {
    "slot": "Керемет, {slot} сөйлесейік 👍",
    "booked": "Керемет! Сізді жазып қойдым: {slot}. Менеджеріміз осы уақытта хабарласады 👍",
    "cannot": "Түсіндім, қоңырауды басқа уақытқа ауыстырайық 😊",
    "ask_time": "Керемет! Сізге қашан сөйлескен ыңғайлы? "
    "Менеджерлеріміз Астана уақытымен 10:00–18:00 аралығында жұмыс істейді 📞",
    "no": "Түсіндім, жауабыңызға рахмет! Болашақта көмек керек болса — әрқашан көмектесуге дайынбыз 😊",
    "vague": "Әрине, асықпаңыз 😊 Сұрақтарыңыз болса — мен байланыстамын.",
    "no_price": "Нақты бағаны менеджер дайындайды — ол сізге өзекті прайс-парақты жібереді. "
    "Сізді қандай көлем қызықтырады? 😊",
    "price": "Прайс бойынша бағасы — {price}. Сізге қандай көлем керек? 😊",
    "gap": "Жақсы сұрақ, әріптестерімнен нақтылап, сізге жауап беремін 😊",
    "about": "Қызығушылығыңызға рахмет! Біз туралы толығырақ айтып берейін. {spin}",
    "thanks": "Хабарламаңызға рахмет! {spin}",
    "spin": "Айтыңызшы, қазір қандай міндетті шешкіңіз келеді? 😊",
}


def _now(prompt: str, clock_now: datetime | None) -> datetime:
    match = _NOW.search(prompt)
    if match is None:
        return (clock_now or datetime.now(ASTANA)).astimezone(ASTANA).replace(second=0, microsecond=0)
    day = date.fromisoformat(match.group(1))
    return datetime(day.year, day.month, day.day, int(match.group(2)), int(match.group(3)), tzinfo=ASTANA)


def _named_day(text: str, now: datetime, hour: int, minute: int) -> date | None:
    lowered = text.lower()
    for word, offset in _DAY_OFFSETS:
        if re.search(rf"(?<![\w]){word}(?![\w])", lowered):
            return now.date() + timedelta(days=offset)
    for weekday, pattern in enumerate(_WEEKDAYS):
        if re.search(rf"(?<![\w]){pattern}(?![\w])", lowered):
            ahead = (weekday - now.weekday()) % 7
            if ahead == 0 and (hour, minute) <= (now.hour, now.minute):
                ahead = 7
            return now.date() + timedelta(days=ahead)
    return None


def _time_in(text: str) -> tuple[int, int] | None:
    """The clock time the client names; "в 11" counts only with a day, call or consent word around it."""
    match = _BARE_TIME.search(text)
    if match:
        return int(match.group(1)), int(match.group(2))
    has_context_words = bool(
        _CALL.search(text)
        or _CONSENT.search(text)
        or any(re.search(word, text, re.I) for word, _ in _DAY_OFFSETS)
        or any(re.search(pattern, text, re.I) for pattern in _WEEKDAYS)
    )
    for match in _PREP_TIME.finditer(text):
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        after = text[match.end() :]
        if match.group(2) is None and not _TIME_CONTEXT.match(after):
            # A bare "в 2" is more often a count ("в 2 филиалах") than a call time.
            if not (has_context_words and 7 <= hour <= 22):
                continue
        if hour < 12 and _AFTERNOON.match(after):
            hour += 12
        return hour, minute
    return None


def _proposed_slot(text: str, now: datetime) -> datetime | None:
    clock_time = _time_in(text)
    if clock_time is None:
        return None
    hour, minute = clock_time
    day = _named_day(text, now, hour, minute)
    if day is None:
        day = now.date() if (hour, minute) > (now.hour, now.minute) else now.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ASTANA)


def _slot_offered_by_bot(history: str) -> datetime | None:
    bot_lines = [text for role, text in history_lines(history) if role == "Бот"]
    if not bot_lines:
        return None
    match = _SLOT.search(bot_lines[-1])
    if match is None:
        return None
    day, month, year, hour, minute = (int(g) for g in match.groups())
    return datetime(year, month, day, hour, minute, tzinfo=ASTANA)


_SOURCE_LINE = re.compile(r"^\[[^\]]*стр\. \d+\]$")


def _knowledge_lines(prompt: str) -> list[str]:
    knowledge = section(prompt, "БАЗА ЗНАНИЙ О ПРОДУКТАХ:", ("ВАЖНЫЕ ПРАВИЛА:",), stop_at_header=False) or ""
    lines = (line.strip() for line in knowledge.splitlines())
    # "[pricing.pdf, стр. 1]" is where a chunk came from, not what it says.
    return [
        line for line in lines if len(re.findall(r"[^\W\d_]", line)) >= 3 and not _SOURCE_LINE.match(line)
    ]


def _result(
    reply: str,
    stance: str,
    slot: datetime | None = None,
    agreed: bool = False,
    *,
    cannot_make_it: bool = False,
    knowledge_gap: bool = False,
) -> dict[str, Any]:
    return {
        "reply": reply,
        "stance": stance,
        "agreed_to_call": agreed or slot is not None,
        "proposed_call_time": slot.strftime("%Y-%m-%dT%H:%M") if slot else None,
        "confirmed_call_time": slot is not None,
        "opt_out": False,
        "cannot_make_it": cannot_make_it,
        "knowledge_gap": knowledge_gap,
    }


def _best_price_line(question: str, knowledge: list[str]) -> str | None:
    """The price line sharing most word stems with the question, the more specific (shorter) one first."""
    asked = _stems(question)
    priced = [line for line in knowledge if _PRICE_LINE.search(line)]
    if not priced:
        return None
    return max(priced, key=lambda line: (len(asked & _stems(line)), -len(_stems(line))))


def _stems(text: str) -> set[str]:
    return {word[:5] for word in re.findall(r"[^\W\d_]{4,}", text.lower())}


def _slot_text(slot: datetime, kazakh: bool = False) -> str:
    return f"{slot:%d.%m.%Y}, сағат {slot:%H:%M}" if kazakh else f"{slot:%d.%m.%Y} в {slot:%H:%M}"


def new_client_message(prompt: str) -> str | None:
    """What the client just wrote, as the sales prompt quotes it; None when the prompt has no such section."""
    return section(prompt, "НОВОЕ СООБЩЕНИЕ КЛИЕНТА:", ("ТЕКУЩАЯ ДАТА И ВРЕМЯ:", "ТВОЙ ОТВЕТ"))


def sales_answer(prompt: str, clock_now: datetime | None = None) -> dict[str, Any]:
    """The sales agent's answer; clock_now stands in when the prompt does not say the current time."""
    history = section(prompt, "КОНТЕКСТ ТЕКУЩЕЙ ПЕРЕПИСКИ:", ("НОВОЕ СООБЩЕНИЕ КЛИЕНТА:",)) or ""
    text = new_client_message(prompt) or ""
    now = _now(prompt, clock_now)
    if _KAZAKH_REPLY.search(prompt):
        return _kazakh_answer(text, history, _knowledge_lines(prompt), now)

    slot = _proposed_slot(text, now)
    if slot is not None:
        return _result(f"Отлично, давайте созвонимся {_slot_text(slot)} 👍", "yes", slot)
    offered = _slot_offered_by_bot(history)
    if offered is not None and _CONSENT.search(text):
        reply = f"Отлично! Записал вас на {_slot_text(offered)}. Наш менеджер свяжется с вами в это время 👍"
        return _result(reply, "yes", offered)
    if _CANNOT.search(text) and any(
        "Записал вас" in line for role, line in history_lines(history) if role == "Бот"
    ):
        return _result(CANNOT_REPLY, "asking", cannot_make_it=True)
    if _CALL.search(text):
        return _result(ASK_TIME_REPLY, "yes", agreed=True)
    if _NO.search(text):
        return _result(NO_REPLY, "no")
    if _VAGUE.search(text):
        return _result(VAGUE_REPLY, "undecided")
    knowledge = _knowledge_lines(prompt)
    if _PRICE_QUESTION.search(text):
        price_line = _best_price_line(text, knowledge)
        if price_line is None:
            return _result(NO_PRICE_REPLY, "asking")
        price = price_line.lstrip("•-– ").rstrip(" .")
        return _result(f"{price}. Подскажите, для какой задачи вы рассматриваете решение? 😊", "asking")
    if "?" in text and knowledge in ([], [NOTHING_FOUND]):
        return _result(GAP_REPLY, "asking", knowledge_gap=True)  # the agent found nothing about it
    if knowledge:
        topic = knowledge[0][:120].rstrip(" .;:,")
        reply = f"Спасибо за интерес! Коротко о нас: {topic}. {SPIN_QUESTION}"
        return _result(reply, "asking")
    return _result(f"Спасибо за сообщение! {SPIN_QUESTION}", "asking")


def _kazakh_answer(text: str, history: str, knowledge: list[str], now: datetime) -> dict[str, Any]:
    """The same rules as the Russian answer, in Kazakh; a price is quoted as its amount, not the Russian
    line of the knowledge base."""
    slot = _proposed_slot(text, now)
    if slot is not None:
        return _result(KAZAKH["slot"].format(slot=_slot_text(slot, kazakh=True)), "yes", slot)
    offered = _slot_offered_by_bot(history)
    if offered is not None and _CONSENT.search(text):
        return _result(KAZAKH["booked"].format(slot=_slot_text(offered, kazakh=True)), "yes", offered)
    bot_lines = [line for role, line in history_lines(history) if role == "Бот"]
    if _CANNOT.search(text) and any("жазып қойдым" in line for line in bot_lines):
        return _result(KAZAKH["cannot"], "asking", cannot_make_it=True)
    if _CALL.search(text):
        return _result(KAZAKH["ask_time"], "yes", agreed=True)
    if _NO.search(text):
        return _result(KAZAKH["no"], "no")
    if _VAGUE.search(text):
        return _result(KAZAKH["vague"], "undecided")
    if _PRICE_QUESTION.search(text):
        price_line = _best_price_line(text, knowledge)
        price = _PRICE_LINE.search(price_line) if price_line else None
        if price is None:
            return _result(KAZAKH["no_price"], "asking")
        return _result(KAZAKH["price"].format(price=price.group(0).strip()), "asking")
    if "?" in text and knowledge in ([], [NOTHING_FOUND]):
        return _result(KAZAKH["gap"], "asking", knowledge_gap=True)
    if knowledge:
        return _result(KAZAKH["about"].format(spin=KAZAKH["spin"]), "asking")
    return _result(KAZAKH["thanks"].format(spin=KAZAKH["spin"]), "asking")
