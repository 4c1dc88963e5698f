"""The deterministic "model" behind the fake Gemini: which job a request is, and what it answers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.fake_sales import new_client_message, sales_answer
from sandbox.messages import TRANSCRIPT_MARKER
from sandbox.prompt_sections import history_lines, line_value, section

# The jobs a request can be; "plain" is anything else (a prompt the fake has no rules for).
JOBS = ("moderator", "sales", "follow_up", "transcription", "call_summary")


class UnreadableAudio(Exception):
    """The audio carries no transcript the fake can hear; Gemini answers 400 INVALID_ARGUMENT."""


@dataclass
class LlmRequest:
    system_texts: list[str] = field(default_factory=list)
    content_texts: list[str] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    schema: dict[str, Any] | None = None
    wants_json: bool = False
    # "Now" on the sandbox clock, for a sales prompt that does not say the current date and time.
    now: datetime | None = None

    @property
    def schema_properties(self) -> set[str]:
        properties = (self.schema or {}).get("properties")
        return set(properties) if isinstance(properties, dict) else set()

    @property
    def prompt(self) -> str:
        return "\n\n".join([*self.system_texts, *self.content_texts])


_SPAM = re.compile(r"реклам|заработ|казино|кредит|выигр|подпишись|ставки|крипт|http", re.I)
_PERSONAL = re.compile(r"как дела|что делаешь|ошиблись номером|кто это", re.I)
_GREETING = re.compile(r"привет", re.I)
_BUSINESS = re.compile(
    r"цен|стоимост|сколько стоит|прайс|тариф|(?<![\w])кп(?![\w])|коммерческ|договор|услов|доставк|гарант"
    r"|бюджет|закуп|тендер|купить|заказ|интересует|подключ|демо|созвон"
    r"|баға|қанша|тұрады|жеткізу|келісімшарт|тапсырыс|сатып ал|қоңырау",  # the same, in Kazakh
    re.I,
)
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")
_COMPANY_IN_NAME = re.compile(r"(?<![\w])(?:ООО|ТОО|ИП|АО|LLC|LTD|компания|корпорация)(?![\w])", re.I)
_NO_VALUE = {"", "none", "null", "-", "—", "нет", "не указано", "неизвестно", "unknown", "n/a"}

_FOLLOW_UPS = {
    1: "Добрый день! 😊 Напоминаю о нашем разговоре. Остались ли у вас вопросы?",
    2: "Здравствуйте! Наше решение помогает командам тратить меньше времени на рутину ✅ "
    "Рассказать, как это может работать у вас?",
    3: "Добрый день! 👋 Компании из вашей сферы уже работают с нами и довольны результатом. "
    "Интересно обсудить ваш случай?",
    4: "Здравствуйте! В этом месяце у нас особые условия для новых клиентов — "
    "подробности расскажет менеджер. Обсудим? 📞",
    5: "Здравствуйте! Понимаю, что сейчас, возможно, не самое подходящее время. "
    "Если в будущем понадобится помощь — всегда рады помочь! 😊",
}
_KAZAKH_FOLLOW_UPS = {
    1: "Қайырлы күн! 😊 Біздің әңгімемізді еске саламын. Сұрақтарыңыз қалды ма?",
    2: "Сәлеметсіз бе! Біздің шешім командаларға күнделікті жұмысқа аз уақыт жұмсауға көмектеседі ✅ "
    "Сізде қалай жұмыс істейтінін айтып берейін бе?",
    3: "Қайырлы күн! 👋 Сіздің саладағы компаниялар бізбен жұмыс істеп, нәтижеге риза. "
    "Сіздің жағдайыңызды талқылаймыз ба?",
    4: "Сәлеметсіз бе! Осы айда жаңа клиенттерге ерекше шарттар бар — толығын менеджер айтып береді. "
    "Талқылаймыз ба? 📞",
    5: "Сәлеметсіз бе! Қазір, бәлкім, ыңғайлы уақыт емес шығар, түсінемін. "
    "Болашақта көмек керек болса — әрқашан көмектесуге қуаныштымыз! 😊",
}
PLAIN_ANSWER = "Здравствуйте! Чем могу помочь? 😊"


def transcribe(audio: list[bytes]) -> str:
    transcripts = []
    for data in audio:
        _, marker, transcript = data.partition(TRANSCRIPT_MARKER)
        if not marker:
            raise UnreadableAudio("Unable to process input audio")
        transcripts.append(transcript.decode("utf-8", errors="replace").strip())
    return " ".join(transcripts)


def _company(prompt: str) -> str | None:
    company = line_value(prompt, "Название компании:")
    if company and company.lower() not in _NO_VALUE:
        return company
    contact = line_value(prompt, "Имя в контактах:") or ""
    return contact if _COMPANY_IN_NAME.search(contact) else None


def moderate(req: LlmRequest) -> dict[str, object]:
    prompt = req.prompt
    history = section(prompt, "ИСТОРИЯ ПЕРЕПИСКИ", ("ИНСТРУКЦИЯ:", "ОТВЕТЬ СТРОГО"))
    if history is None:
        # Without the marker the conversation is whatever the caller put last, not the criteria text.
        history = req.content_texts[-1] if req.content_texts else ""
    lines = history_lines(history)
    has_roles = any(role is not None for role, _ in lines)
    client_text = "\n".join(text for role, text in lines if role == "Клиент" or not has_roles)
    company = _company(prompt)

    def verdict(is_client: bool | None, confidence: float, reasoning: str) -> dict[str, object]:
        return {"isClient": is_client, "confidence": confidence, "reasoning": reasoning}

    if _SPAM.search(client_text):
        return verdict(False, 0.9, "Сообщения похожи на спам или рекламу сторонних услуг.")
    personal_greeting = _GREETING.search(client_text) and len(_EMOJI.findall(client_text)) >= 3
    if _PERSONAL.search(client_text) or personal_greeting:
        return verdict(False, 0.8, "Личный неформальный разговор, деловых вопросов нет.")
    if _BUSINESS.search(client_text):
        return verdict(True, 0.85, "Контакт задает деловые вопросы о ценах, условиях или деталях.")
    if company and client_text.strip():
        return verdict(True, 0.7, f"Контакт связан с компанией «{company}» и ведет переписку.")
    return verdict(None, 0.3, "Недостаточно данных: сообщения без делового контекста.")


def follow_up(prompt: str) -> dict[str, str]:
    match = re.search(r"КАСАНИЕ\s*#\s*(\d+)", prompt)
    touch = min(max(int(match.group(1)), 1), 5) if match else 1
    touches = _KAZAKH_FOLLOW_UPS if "Пиши на казахском языке" in prompt else _FOLLOW_UPS
    return {"message": touches[touch]}


_SIZE = re.compile(r"\d+\s*(?:склад\w*|пользовател\w*|сотрудник\w*|магазин\w*|филиал\w*|точ\w*)", re.I)
_DOUBT = re.compile(r"дорог|сомнева|не уверен|подумаю|посмотрю|конкурент", re.I)


def call_summary(prompt: str) -> dict[str, str]:
    """Three lines for the manager, from the client's lines of the conversation."""
    said = [text for role, text in history_lines(section(prompt, "ПЕРЕПИСКА:") or "") if role == "Клиент"]
    sizes = [m.group(0) for text in said for m in _SIZE.finditer(text)]
    doubts = [text for text in said if _DOUBT.search(text)]
    return {
        "wants": said[0][:200] if said else "не ясно из переписки",
        "size": ", ".join(sizes) or "не обсуждали",
        "objections": "; ".join(doubts)[:200] or "не было",
    }


def job_of(req: LlmRequest) -> str:
    """Which prompt this is: audio is a transcription, else the response schema or the markers say."""
    if req.audio:
        return "transcription"
    props = req.schema_properties
    if "isClient" in props:
        return "moderator"
    if "reply" in props:
        return "sales"
    if "message" in props:
        return "follow_up"
    if "wants" in props:
        return "call_summary"
    if props:
        return "plain"
    prompt = req.prompt
    if "ИСТОРИЯ ПЕРЕПИСКИ" in prompt and "Название компании:" in prompt:
        return "moderator"
    if "НОВОЕ СООБЩЕНИЕ КЛИЕНТА:" in prompt:
        return "sales"
    if re.search(r"КАСАНИЕ\s*#\s*\d", prompt):
        return "follow_up"
    return "plain"


def client_part(req: LlmRequest, job: str) -> str:
    """The text a scripted answer's `when` is looked for in: the client's new message for sales."""
    if job == "sales":
        return new_client_message(req.prompt) or req.prompt
    return req.prompt


def answer(req: LlmRequest) -> str:
    """The candidate text: JSON when a schema or JSON output was asked for, the bare message otherwise."""
    job = job_of(req)
    if job == "transcription":
        return transcribe(req.audio)
    structured = req.wants_json or bool(req.schema_properties)
    if job == "moderator":
        # The moderator prompt demands JSON even when the caller does not set a JSON mime type.
        return json.dumps(moderate(req), ensure_ascii=False)
    if job == "sales":
        result = sales_answer(req.prompt, req.now)
        if req.schema_properties:  # a real model answers the fields it was asked for, no others
            result = {key: value for key, value in result.items() if key in req.schema_properties}
        return json.dumps(result, ensure_ascii=False) if structured else result["reply"]
    if job == "follow_up":
        result = follow_up(req.prompt)
        return json.dumps(result, ensure_ascii=False) if structured else result["message"]
    if job == "call_summary":
        return json.dumps(call_summary(req.prompt), ensure_ascii=False)
    return json.dumps(_fill_schema(req.schema), ensure_ascii=False) if structured else PLAIN_ANSWER


def _fill_schema(schema: dict[str, Any] | None) -> object:
    """An answer of the requested shape for a schema the fake has no rules for."""
    if not schema or not isinstance(schema.get("properties"), dict):
        return {"text": PLAIN_ANSWER}
    defaults = {
        "string": PLAIN_ANSWER,
        "boolean": False,
        "integer": 0,
        "number": 0,
        "array": [],
        "object": {},
    }
    return {
        name: defaults.get(str(spec.get("type", "string")).lower()) if isinstance(spec, dict) else None
        for name, spec in schema["properties"].items()
    }
