"""In-memory state of the sandbox: chats, messages, what the bot sent and read, faults and call stats.

Every mutation is a plain synchronous method with no await inside, so on one event loop each call is
atomic: concurrent requests can never observe a half-applied change.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.crm_portal import Bitrix24

Clock = Callable[[], datetime]
PROMPTS_KEPT = 200


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Chat:
    id: str
    chat_type: str  # "dialog" | "group" (Status, channel and @lid chats are dialogs by type; the id tells)
    name: str
    contact_name: str | None = None  # the business's address-book name for a dialog contact
    business_name: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    # (time, seq) of the newest message the bot marked read; everything up to it counts as read.
    read_upto: tuple[int, int] = (0, 0)

    def last_message(self) -> dict[str, Any] | None:
        return self.messages[-1] if self.messages else None

    def unread(self) -> int:
        seen = self.read_upto
        for message in self.messages:
            if message["is_me"]:
                seen = max(seen, _order_key(message))
        return sum(1 for m in self.messages if not m["is_me"] and _order_key(m) > seen)


@dataclass
class Fault:
    endpoint: str
    status: int | None = None
    latency_ms: int = 0
    rate: float = 1.0
    count: int | None = None
    body: str | None = None
    # A Gemini answer with no usable text ("safety", "max_tokens", ...), for one job or (None) for any.
    answer: str | None = None
    job: str | None = None

    @property
    def key(self) -> str:
        """One fault per key: a transport fault per endpoint, a bad answer per job beside it."""
        if self.answer is None:
            return self.endpoint
        return answer_fault_key(self.job)

    def fires(self) -> bool:
        return self.status is not None or self.body is not None or self.answer is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "rate": self.rate,
            "count": self.count,
            "body": self.body,
            "answer": self.answer,
            "job": self.job,
        }


def answer_fault_key(job: str | None) -> str:
    return f"gemini answer for {job or 'any job'}"


@dataclass
class Script:
    """A canned model answer: a request of `job` whose client text contains `when` gets `answer`."""

    job: str
    when: str
    answer: dict[str, Any]
    count: int | None = None  # None: until deleted

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "when": self.when, "answer": self.answer, "count": self.count}


# What real Wappi can push, by the names its webhook/types/set takes; all of them unless set otherwise.
WEBHOOK_TYPES = ("incoming_message", "outgoing_message_phone", "outgoing_message_api", "delivery_status")


@dataclass
class Webhook:
    """Where the fake Wappi pushes chat messages, as real Wappi does when a webhook URL is registered."""

    url: str
    drop_rate: float = 0.0  # the share of pushes that never arrive, as when the receiver is unreachable
    types: tuple[str, ...] = WEBHOOK_TYPES
    rng: random.Random = field(default_factory=random.Random, repr=False)  # seeded: the same pushes drop
    pushed: int = 0
    dropped: int = 0
    failed: int = 0

    def stats(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "drop_rate": self.drop_rate,
            "types": list(self.types),
            "pushed": self.pushed,
            "dropped": self.dropped,
            "failed": self.failed,
        }


@dataclass
class AutoResponder:
    """A contact that is another business's bot: it answers every bot message after `delay_ms`."""

    phone: str
    text: str
    delay_ms: int = 300
    answered: int = 0


def _order_key(message: dict[str, Any]) -> tuple[int, int]:
    return (message["time"], message["_seq"])


class SandboxState:
    def __init__(
        self,
        clock: Clock = utc_now,
        seed: int | None = None,
        wappi_token: str | None = None,
        gemini_api_key: str | None = None,
        clock_offset_s: float = 0.0,
    ) -> None:
        self._machine_clock = clock
        # The sandbox's clock runs this far ahead of the machine's (negative: behind), so a whole system
        # started with the same CLOCK_OFFSET_SECONDS can live "on a Saturday" or "on a public holiday".
        self.clock_offset_s = clock_offset_s
        # None accepts any non-empty credential.
        self.wappi_token = wappi_token
        self.gemini_api_key = gemini_api_key
        self.rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        self.chats: dict[str, Chat] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.sent: list[dict[str, Any]] = []
        self.read_ids: list[str] = []
        self.faults: dict[str, Fault] = {}
        self.scripts: list[Script] = []
        # The newest prompts the fake model was sent, by job: what a test reads to see what Gemini was shown.
        self.prompts: deque[dict[str, str]] = deque(maxlen=PROMPTS_KEPT)
        self.webhook: Webhook | None = None
        self.bitrix24 = Bitrix24()
        self.crm_events: list[dict[str, Any]] = []
        self.autoresponders: dict[str, AutoResponder] = {}
        self.calls: dict[str, int] = {}
        self.gemini_in_flight = 0
        self.gemini_peak_in_flight = 0
        self.gemini_busy_s = 0.0  # the calls' durations added up: what the model's time cost the replies
        self._seq = 0
        self._listing: tuple[int, list[Chat]] = (-1, [])  # chats_newest_first as of message number _seq

    def clock(self) -> datetime:
        """Now on the sandbox's clock: every time the fakes stamp comes from here."""
        return self._machine_clock() + timedelta(seconds=self.clock_offset_s)

    def now_unix(self) -> int:
        return int(self.clock().timestamp())

    # --- chats and messages -------------------------------------------------------------------

    def get_or_create_chat(self, chat_id: str, chat_type: str, name: str) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = Chat(id=chat_id, chat_type=chat_type, name=name)
            self.chats[chat_id] = chat
        return chat

    def add_message(self, chat: Chat, message: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        message["_seq"] = self._seq
        chat.messages.append(message)
        chat.messages.sort(key=_order_key)
        self.messages[message["id"]] = message
        return message

    def add_file(self, file_name: str, data: bytes, mime_type: str) -> None:
        self.files[file_name] = (data, mime_type)

    def chats_newest_first(self) -> list[Chat]:
        """Chats with messages, newest activity first. Sorted again only once a message was added: a listing
        pages through it many times, and sorting thousands of chats for every page took most of the fake's
        CPU when the bench offered hundreds of messages a second."""
        if self._listing[0] != self._seq:
            with_messages = [c for c in self.chats.values() if c.messages]
            ordered = sorted(with_messages, key=lambda c: _order_key(c.messages[-1]), reverse=True)
            self._listing = (self._seq, ordered)
        return self._listing[1]

    def mark_read(self, message_id: str) -> None:
        self.read_ids.append(message_id)
        message = self.messages[message_id]
        chat = self.chats[message["chatId"]]
        chat.read_upto = max(chat.read_upto, _order_key(message))

    def record_sent(self, record: dict[str, Any]) -> None:
        self.sent.append(record)

    # --- faults and stats ---------------------------------------------------------------------

    def set_fault(self, fault: Fault) -> None:
        self.faults[fault.key] = fault

    def clear_faults(self, endpoint: str | None = None) -> None:
        if endpoint is None:
            self.faults.clear()
        else:
            self.faults = {key: f for key, f in self.faults.items() if f.endpoint != endpoint}

    def count_call(self, endpoint: str) -> None:
        self.calls[endpoint] = self.calls.get(endpoint, 0) + 1

    def should_fail(self, fault: Fault) -> bool:
        """Decide whether this call fails; a counted fault is used up and then removed."""
        if not fault.fires():
            return False
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0 and self.faults.get(fault.key) is fault:
                # A fault set again while this call waited out the latency stays.
                del self.faults[fault.key]
            return fault.count >= 0
        return self.rng.random() < fault.rate

    # --- scripted model answers ---------------------------------------------------------------

    def add_script(self, script: Script) -> None:
        self.scripts.append(script)

    def clear_scripts(self) -> None:
        self.scripts.clear()

    def find_script(self, job: str, client_text: str, *, use: bool) -> Script | None:
        """The oldest script of this job whose `when` occurs in client_text; `use` spends one of its count."""
        for script in self.scripts:
            if script.job == job and script.when in client_text:
                if use and script.count is not None:
                    script.count -= 1
                    if script.count <= 0:
                        self.scripts.remove(script)
                return script
        return None

    def record_prompt(self, job: str, prompt: str) -> None:
        self.prompts.append({"job": job, "prompt": prompt})

    def gemini_started(self) -> float:
        """A call starts; returns its start (time.monotonic()) for gemini_finished."""
        self.gemini_in_flight += 1
        self.gemini_peak_in_flight = max(self.gemini_peak_in_flight, self.gemini_in_flight)
        return time.monotonic()

    def gemini_finished(self, started: float) -> None:
        self.gemini_in_flight -= 1
        self.gemini_busy_s += time.monotonic() - started

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "gemini": {
                "calls": self.calls.get("gemini", 0),
                "in_flight": self.gemini_in_flight,
                "peak_in_flight": self.gemini_peak_in_flight,
                "busy_ms": round(self.gemini_busy_s * 1000, 1),
            },
        }
