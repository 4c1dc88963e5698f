"""The service's configuration: the spec's environment variables, read once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_ASYNCPG_SCHEME = "postgresql+asyncpg://"
_PG_SCHEMES = ("postgres://", "postgresql://", _ASYNCPG_SCHEME)


def to_asyncpg_url(url: str) -> str:
    """Hosts hand out postgres:// or postgresql:// URLs; the service always talks through asyncpg."""
    url = url.strip()
    for scheme in _PG_SCHEMES:
        if url.startswith(scheme):
            return _ASYNCPG_SCHEME + url[len(scheme) :]
    raise ValueError("must start with postgres://, postgresql:// or postgresql+asyncpg://")


class DatabaseSettings(BaseSettings):
    """Only what alembic needs, so `alembic upgrade head` runs with nothing but DATABASE_URL set."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    DATABASE_URL: str

    @field_validator("DATABASE_URL")
    @classmethod
    def _asyncpg_url(cls, value: str) -> str:
        return to_asyncpg_url(value)


class Settings(DatabaseSettings):
    PROJECT_NAME: str = "ai-agent-service"

    GEMINI_API_KEY: SecretStr = Field(min_length=1)
    GEMINI_MODEL: str = Field(default="gemini-2.5-pro", min_length=1)
    GEMINI_BASE_URL: str = "https://generativelanguage.googleapis.com"

    RABBITMQ_URL: str
    QUEUE_INCOMING_MESSAGES: str = Field(default="incoming_messages", min_length=1)
    QUEUE_OUTGOING_MESSAGES: str = Field(default="outgoing_messages", min_length=1)
    QUEUE_VOICE_TRANSCRIPTION: str = Field(default="voice_transcription", min_length=1)
    # A message that fails transiently (Gemini or the database down) comes back every 5 s through the
    # retry queue; 40 deliveries ride out an outage of about four minutes before it is parked in the DLQ.
    MAX_DELIVERY_ATTEMPTS: int = Field(default=40, ge=1, le=1000)

    MAX_CONTEXT_MESSAGES: int = Field(default=20, ge=1, le=200)
    AGENT_CONCURRENCY: int = Field(default=300, ge=1, le=2000)
    ENABLE_FOLLOW_UPS: bool = True
    FOLLOW_UP_INTERVALS: Annotated[list[int], NoDecode] = [24, 72, 168, 336, 720]
    # How often the scheduler looks for silent clients and due touches.
    FOLLOW_UP_CHECK_INTERVAL_SECONDS: float = Field(default=30, gt=0, le=3600)
    TIMEZONE: str = "Asia/Almaty"
    WORKING_HOURS_START: int = Field(default=10, ge=0, le=23)
    WORKING_HOURS_END: int = Field(default=18, ge=1, le=24)

    KNOWLEDGE_BASE_PATH: Path = Path("./knowledge_base/")
    PDF_CACHE_ENABLED: bool = True
    PROMPTS_PATH: Path = Path("./prompts/")

    # Rehearsing another moment (a Monday morning, a holiday) on the sandbox; 0 in production.
    CLOCK_OFFSET_SECONDS: float = 0

    LOG_LEVEL: str = "INFO"
    ADMIN_API_KEY: SecretStr = Field(min_length=1)
    PORT: int = Field(default=8002, ge=1, le=65535)
    RATE_LIMIT_PER_MINUTE: int = Field(default=120, ge=1)

    @field_validator("RABBITMQ_URL")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value

    @field_validator("FOLLOW_UP_INTERVALS", mode="before")
    @classmethod
    def _comma_separated_hours(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
            if not all(part.isdigit() and int(part) > 0 for part in parts):
                raise ValueError("must be comma-separated positive hours, e.g. 24,72,168,336,720")
            return [int(part) for part in parts]
        return value

    @field_validator("TIMEZONE")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _working_hours_order(self) -> Settings:
        if self.WORKING_HOURS_START >= self.WORKING_HOURS_END:
            raise ValueError("WORKING_HOURS_START must be earlier than WORKING_HOURS_END")
        return self

    def secret_values(self) -> list[str]:
        """Values the logger must never print."""
        secrets = [self.GEMINI_API_KEY.get_secret_value(), self.ADMIN_API_KEY.get_secret_value()]
        for url in (self.DATABASE_URL, self.RABBITMQ_URL):
            password = _url_password(url)
            if password:
                secrets.append(password)
        return [secret for secret in secrets if len(secret) >= 4]


def _url_password(url: str) -> str | None:
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    if "@" not in netloc:
        return None
    credentials = netloc.rsplit("@", 1)[0]
    return credentials.split(":", 1)[1] if ":" in credentials else None


def configuration_errors(error: ValidationError) -> list[str]:
    """One readable line per bad variable, e.g. "Configuration error: GEMINI_API_KEY is required"."""
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        if item["type"] == "missing" or item.get("input") == "":
            lines.append(f"Configuration error: {name} is required")
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"Configuration error: {name} is malformed: {message}")
    return lines
