"""What a reply says about a call: the clock times and dates it names, and whether it claims a booking.

Pure functions over text. The code decides every call time, so a model's reply that names one is allowed
out only when that time is one the code booked or offered (services/call_booking.py checks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# Each month's stems, Russian and Kazakh.
_MONTHS = (
    "январ|қаңтар",
    "феврал|ақпан",
    "март|наурыз",
    "апрел|сәуір",
    "ма[яй]|мамыр",
    "июн|маусым",
    "июл|шілде",
    "август|тамыз",
    "сентябр|қыркүйек",
    "октябр|қазан",
    "ноябр|қараша",
    "декабр|желтоқсан",
)
_MONTH_WORD = re.compile(r"(?<!\d)([0-3]?\d)\s+(" + "|".join(_MONTHS) + r")\w*", re.I)
_NUMERIC_DATE = re.compile(r"(?<![\d.,])([0-3]?\d)\.([01]\d)(?:\.(\d{4}|\d{2}))?(?!\d|[.,]\d)")
# "11:00", and "в 11.00" (a dot only after a preposition: bare "15.00" is as often an amount).
_CLOCK = re.compile(
    r"(?<![\d:.,])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])|(?<![\w])(?:в|к|до)\s+([01]?\d|2[0-3])\.([0-5]\d)(?![\d.])",
    re.I,
)
# "в 11 часов", "на 3 дня"; Kazakh "сағат 11-де".
_HOUR_WORDS = re.compile(
    r"(?<![\w])(?:в|к|на)\s+([01]?\d|2[0-3])\s*(?:час\w*|ч\b|утра|дня|вечера|ночи)"
    r"|(?<![\w])сағат\s+([01]?\d|2[0-3])(?![\d:.])",
    re.I,
)
# "с 10:00 до 18:00", "10:00–18:00", "10:00-ден 18:00-ге дейін": working hours stated as facts, not a
# call time.
_TIME_RANGE = re.compile(
    r"(?:с\s+)?(?:[01]?\d|2[0-3])(?:[:.][0-5]\d)?\s*(?:до|-|–|—)\s*(?:[01]?\d|2[0-4])(?:[:.][0-5]\d)?"
    r"(?:\s*(?:час\w*|ч\b))?"
    r"|(?:[01]?\d|2[0-3])(?::[0-5]\d)?-?[дтн][еа]н\s+(?:[01]?\d|2[0-4])(?::[0-5]\d)?-?[гк][еа]\s+дейін",
    re.I,
)
_DAY_WORDS = (
    (re.compile(r"(?<![\w])(?:послезавтра|бүрсігүні\w*)(?![\w])", re.I), 2),
    (re.compile(r"(?<![\w])(?:завтра|ертең\w*)(?![\w])", re.I), 1),
    (re.compile(r"(?<![\w])(?:сегодня|бүгін\w*)(?![\w])", re.I), 0),
)
_WEEKDAYS = tuple(
    re.compile(rf"(?<![\w])(?:{stems})(?![\w])", re.I)
    for stems in (
        r"понедельник\w*|дүйсенбі\w*",
        r"вторник\w*|сейсенбі\w*",
        r"сред[ауые]|сәрсенбі\w*",
        r"четверг\w*|бейсенбі\w*",
        r"пятниц\w*|жұма\w*",
        r"суббот\w*|сенбі\w*",
        r"воскресень\w*|жексенбі\w*",
    )
)
_BOOKING_CLAIM = re.compile(
    r"(?<![\w])(?:"
    r"записал[аи]?\s+(?:вас|тебя|ваш|на)"
    r"|(?:на|за)планировал[аи]?\s+(?:вам\s+|для\s+вас\s+)?(?:созвон|звонок|встреч)"
    r"|назначил[аи]?\s+(?:вам\s+|для\s+вас\s+)?(?:созвон|звонок|встреч|время)"
    r"|забронировал[аи]?"
    r"|(?:созвон|звонок|встреча)\s+(?:назначен|запланирован|подтвержд)\w*"
    r"|жд[уеё]м?\s+вас"
    r"|до\s+связи\s+(?:в|во|на|завтра|сегодня|послезавтра)(?![\w])"
    # Kazakh: "жазып қойдым", "сізді жаздым", "тіркедім", "белгіледім", "қоңырау белгіленді", "сізді күтеміз".
    r"|жазып\s+қойд\w*|жазд[ыі]м|тіркед[іи]м|белгілед[іи]м|брондад[ыі]м"
    r"|(?:қоңырау|кездесу)\w*\s+(?:белгіленді|бекітілді|тағайындалды)"
    r"|сізді(?:\s+\S+){0,3}?\s+күтеміз"
    r")",
    re.I,
)
_CALL_CONTEXT = re.compile(
    r"созвон|звон|звоним|встреч|свяж|связ|поговор|консультац|менеджер|запис|назнач"
    r"|қоңырау|хабарлас|кездес|сөйлес|кеңес|жазып|жазд|тіркед|белгіле|бронда",
    re.I,
)


@dataclass(frozen=True)
class CallMentions:
    """The call times a text names, in the business's zone."""

    claims_booking: bool
    clock_times: tuple[tuple[int, int], ...]  # (hour, minute)
    dates: tuple[date, ...]
    weekdays: tuple[int, ...]  # Monday = 0

    @property
    def names_a_time(self) -> bool:
        return bool(self.clock_times or self.dates or self.weekdays)


def call_mentions(text: str, today: date) -> CallMentions:
    """The times and dates `text` names for a call (`today` resolves "завтра" and dates without a year).

    A text without any word about a call or booking names no call time: "доставка до 14:00" is not one.
    """
    claims = bool(_BOOKING_CLAIM.search(text))
    if not claims and not _CALL_CONTEXT.search(text):
        return CallMentions(False, (), (), ())
    scanned = _TIME_RANGE.sub(" ", text)
    numeric_dates, scanned = _numeric_dates(scanned, today)
    dates = [*numeric_dates, *_month_word_dates(scanned, today)]
    dates.extend(today + timedelta(days=offset) for pattern, offset in _DAY_WORDS if pattern.search(scanned))
    clock_times = [(int(h1 or h2), int(m1 or m2)) for h1, m1, h2, m2 in _CLOCK.findall(scanned)]
    clock_times.extend((int(h1 or h2), 0) for h1, h2 in _HOUR_WORDS.findall(scanned))
    weekdays = [day for day, pattern in enumerate(_WEEKDAYS) if pattern.search(scanned)]
    return CallMentions(claims, tuple(clock_times), tuple(dates), tuple(weekdays))


def only_names(mentions: CallMentions, allowed: list[datetime]) -> bool:
    """True when every time, date and weekday the text names belongs to one of the `allowed` local slots."""
    if not mentions.names_a_time:
        return True
    if not allowed:
        return False
    times = {(slot.hour, slot.minute) for slot in allowed}
    dates = {slot.date() for slot in allowed}
    weekdays = {slot.weekday() for slot in allowed}
    return (
        all(t in times for t in mentions.clock_times)
        and all(d in dates for d in mentions.dates)
        and all(w in weekdays for w in mentions.weekdays)
    )


def _numeric_dates(text: str, today: date) -> tuple[list[date], str]:
    """The valid "16.03.2026" / "16.03" dates, and the text without them (so "16.03" is no clock time)."""
    found = []

    def take(match: re.Match[str]) -> str:
        day, month, year = match.groups()
        parsed = _date(int(day), int(month), year or "", today)
        if parsed is None:
            return match.group(0)
        found.append(parsed)
        return " "

    return found, _NUMERIC_DATE.sub(take, text)


def _month_word_dates(text: str, today: date) -> list[date]:
    found = []
    for day, month_word in _MONTH_WORD.findall(text):
        month = next(n for n, stems in enumerate(_MONTHS, start=1) if re.match(stems, month_word, re.I))
        found.append(_date(int(day), month, "", today))
    return [d for d in found if d is not None]


def _date(day: int, month: int, year: str, today: date) -> date | None:
    """A date as written; without a year, the next such date from today on."""
    try:
        if year:
            full_year = int(year) + (2000 if len(year) == 2 else 0)
            return date(full_year, month, day)
        candidate = date(today.year, month, day)
    except ValueError:
        return None  # "31.02", "1.50 млн": not a date
    return candidate if candidate >= today else candidate.replace(year=today.year + 1)
