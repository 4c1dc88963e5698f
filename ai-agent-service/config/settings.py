"""The agent's configuration: the spec's environment variables, read once at start-up. What both services read
(database, broker, queues, Gemini, time zone, logs, admin key) comes from service_kit's ServiceSettings."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, StringConstraints, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import NoDecode

from service_kit.settings import ServiceSettings
from services.call_calendar import CallPolicy
from services.chat_control import ChatLimits
from services.crm_events import BITRIX24, WEBHOOK
from services.work_slots import DEFAULT_CPU_SLOTS


class Settings(ServiceSettings):
    PROJECT_NAME: str = "ai-agent-service"
    # The business as its clients know it (e.g. ТОО «Ақ Жол Логистика»): the prompts speak in its name. No
    # default: a bot introducing itself as another company is worse than one that does not start.
    BUSINESS_NAME: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

    # A message that fails transiently (Gemini or the database down) comes back every RETRY_DELAY_SECONDS
    # through the retry queue; 40 deliveries ride out an outage of about four minutes before the DLQ.
    MAX_DELIVERY_ATTEMPTS: int = Field(default=40, ge=1, le=1000)

    MAX_CONTEXT_MESSAGES: int = Field(default=20, ge=1, le=200)
    AGENT_CONCURRENCY: int = Field(default=120, ge=1, le=2000)
    # Of those, how many store, read, draft or commit at once (the rest wait for Gemini or a slot): a few per
    # core keep the CPU and the database busy without a burst sharing the CPU among hundreds.
    AGENT_CPU_SLOTS: int = Field(default=DEFAULT_CPU_SLOTS, ge=1, le=100)
    ENABLE_FOLLOW_UPS: bool = True
    FOLLOW_UP_INTERVALS: Annotated[list[int], NoDecode] = [24, 72, 168, 336, 720]
    # How often the scheduler looks for silent clients and due touches.
    FOLLOW_UP_CHECK_INTERVAL_SECONDS: float = Field(default=30, gt=0, le=3600)
    WORKING_HOURS_START: int = Field(default=10, ge=0, le=23)
    WORKING_HOURS_END: int = Field(default=18, ge=1, le=24)

    # The owner stays in charge: a person writing from the business phone pauses the bot in that chat for
    # this long (each message of theirs anew); the bot sends a chat at most this many messages a day (replies
    # and touches); a chat whose other side answers the bot this fast three times in a row is a bot loop.
    OPERATOR_PAUSE_HOURS: float = Field(default=12, gt=0, le=24 * 30)
    MAX_BOT_MESSAGES_PER_CHAT_PER_DAY: int = Field(default=10, ge=1, le=1000)
    LOOP_REPLY_SECONDS: float = Field(default=10, gt=0, le=600)
    # Gemini calls one contact's messages may make in a clock hour; beyond it the model is not asked (one
    # flooding contact neither runs up the bill nor holds up the others), a manager is told and answers.
    MAX_LLM_CALLS_PER_CONTACT_PER_HOUR: int = Field(default=30, ge=1, le=10_000)

    # The managers (MANAGERS, shared with the gateway) are reminded of a call, and its client too, this long
    # before it; each gets a digest of the day at DIGEST_TIME (HH:MM in TIMEZONE) on working days.
    CALL_REMINDER_MINUTES: int = Field(default=60, ge=1, le=24 * 60)
    DIGEST_TIME: time = time(9, 30)
    # How often the calendar looks for due reminders and the digest.
    CALENDAR_CHECK_INTERVAL_SECONDS: float = Field(default=30, gt=0, le=3600)

    KNOWLEDGE_BASE_PATH: Path = Path("./knowledge_base/")
    PDF_CACHE_ENABLED: bool = True
    PROMPTS_PATH: Path = Path("./prompts/")

    PORT: int = Field(default=8002, ge=1, le=65535)

    # The operator console at /console: its password (ADMIN_API_KEY when unset), how long a sign-in lasts,
    # and how many wrong passwords from one address lock that address out, for how long.
    CONSOLE_PASSWORD: SecretStr | None = None
    CONSOLE_SESSION_HOURS: float = Field(default=12, gt=0, le=24 * 30)
    CONSOLE_MAX_FAILED_SIGN_INS: int = Field(default=5, ge=1, le=100)
    CONSOLE_LOCKOUT_MINUTES: float = Field(default=15, gt=0, le=24 * 60)
    # The largest PDF the console takes for the knowledge base.
    CONSOLE_MAX_PDF_MB: float = Field(default=20, gt=0, le=500)
    # whatsapp-gateway's address, for the console's health page (its /health); unset: not shown.
    GATEWAY_URL: str | None = None
    # The sandbox (fake Wappi and Gemini) this install runs on, if it does: the console's "try it as a
    # customer" page writes to it as a client would. Unset (production): no such page.
    SANDBOX_URL: str | None = None
    # Gemini's price in US dollars per million tokens (prompt, output), for today's cost on the health page.
    GEMINI_PROMPT_USD_PER_MILLION: float = Field(default=1.25, ge=0)
    GEMINI_OUTPUT_USD_PER_MILLION: float = Field(default=10.0, ge=0)

    # The CRM hand-off, each optional: events POSTed as signed JSON to CRM_WEBHOOK_URL, and clients and booked
    # calls written into Bitrix24 through its inbound webhook (its URL carries the webhook's secret).
    CRM_WEBHOOK_URL: str | None = None
    CRM_WEBHOOK_SECRET: SecretStr | None = Field(default=None, validate_default=True)
    BITRIX24_WEBHOOK_URL: SecretStr | None = None

    @field_validator("FOLLOW_UP_INTERVALS", mode="before")
    @classmethod
    def _comma_separated_hours(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
            if not all(part.isdigit() and int(part) > 0 for part in parts):
                raise ValueError("must be comma-separated positive hours, e.g. 24,72,168,336,720")
            return [int(part) for part in parts]
        return value

    def call_policy(self) -> CallPolicy:
        return CallPolicy(managers=self.MANAGERS, reminder=timedelta(minutes=self.CALL_REMINDER_MINUTES))

    @field_validator("GATEWAY_URL", mode="before")
    @classmethod
    def _gateway_address(cls, value: object) -> object:
        # Render hands a service's address out as host:port, without a scheme.
        if isinstance(value, str) and value.strip() and "://" not in value:
            value = "http://" + value.strip()
        return cls._optional_http_url(value)

    @field_validator("CRM_WEBHOOK_URL", "BITRIX24_WEBHOOK_URL", "SANDBOX_URL", mode="before")
    @classmethod
    def _optional_http_url(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not value.strip().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.strip()

    @field_validator("CRM_WEBHOOK_SECRET", mode="after")
    @classmethod
    def _secret_with_webhook(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("CRM_WEBHOOK_URL") and not (value and value.get_secret_value()):
            # Reported as the kit reports any missing secret: "CRM_WEBHOOK_SECRET is required".
            raise PydanticCustomError("missing", "required when CRM_WEBHOOK_URL is set")
        return value

    def crm_targets(self) -> tuple[str, ...]:
        """The CRMs events are recorded for: none when neither URL is set."""
        targets = (WEBHOOK,) if self.CRM_WEBHOOK_URL else ()
        return targets + ((BITRIX24,) if self.BITRIX24_WEBHOOK_URL else ())

    def console_password(self) -> str:
        password = self.CONSOLE_PASSWORD.get_secret_value() if self.CONSOLE_PASSWORD else ""
        return password or self.ADMIN_API_KEY.get_secret_value()

    def chat_limits(self) -> ChatLimits:
        return ChatLimits(
            operator_pause=timedelta(hours=self.OPERATOR_PAUSE_HOURS),
            messages_per_day=self.MAX_BOT_MESSAGES_PER_CHAT_PER_DAY,
            loop_reply_seconds=self.LOOP_REPLY_SECONDS,
            llm_calls_per_hour=self.MAX_LLM_CALLS_PER_CONTACT_PER_HOUR,
        )

    @model_validator(mode="after")
    def _working_hours_order(self) -> Settings:
        if self.WORKING_HOURS_START >= self.WORKING_HOURS_END:
            raise ValueError("WORKING_HOURS_START must be earlier than WORKING_HOURS_END")
        return self
