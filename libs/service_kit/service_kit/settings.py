"""The settings both services read (the spec's variable names), their checks, and one readable line per bad
variable at start-up. Each service's Settings extends ServiceSettings with its own."""

from __future__ import annotations

from typing import Annotated, TypeVar
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service_kit.managers import Manager, parse_managers

ASYNCPG_SCHEME = "postgresql+asyncpg://"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Every queue's .retry queue is declared with the delay of contracts/queues.json; a shorter one rides on
# each message. Ten years either way is the furthest a rehearsal of another moment may go.
MAX_RETRY_DELAY_S = 5.0
MAX_CLOCK_OFFSET_S = 10 * 366 * 86400

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class ConfigurationError(Exception):
    """Start-up configuration is unusable; `lines` holds one message per bad variable."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def to_asyncpg_url(url: str) -> str:
    """Hosts hand out postgres:// or postgresql:// URLs; the services always talk through asyncpg."""
    url = url.strip()
    for scheme in ("postgres://", "postgresql://", ASYNCPG_SCHEME):
        if url.startswith(scheme):
            return ASYNCPG_SCHEME + url[len(scheme) :]
    raise ValueError("must start with postgres://, postgresql:// or postgresql+asyncpg://")


class DatabaseSettings(BaseSettings):
    """Only what the migrations need, so `alembic upgrade head` runs with nothing but DATABASE_URL set."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    DATABASE_URL: str = Field(min_length=1, repr=False)  # it carries a password

    @field_validator("DATABASE_URL")
    @classmethod
    def _asyncpg_url(cls, value: str) -> str:
        return to_asyncpg_url(value)


class ServiceSettings(DatabaseSettings):
    PROJECT_NAME: str

    RABBITMQ_URL: str = Field(min_length=1, repr=False)
    QUEUE_INCOMING_MESSAGES: str = Field(default="incoming_messages", min_length=1)
    QUEUE_OUTGOING_MESSAGES: str = Field(default="outgoing_messages", min_length=1)
    QUEUE_VOICE_TRANSCRIPTION: str = Field(default="voice_transcription", min_length=1)
    # A message whose handling fails transiently comes back after RETRY_DELAY_SECONDS through its queue's
    # .retry queue, at most MAX_DELIVERY_ATTEMPTS times, then it is parked in the DLQ.
    RETRY_DELAY_SECONDS: float = Field(default=MAX_RETRY_DELAY_S, gt=0, le=MAX_RETRY_DELAY_S)

    GEMINI_API_KEY: SecretStr = Field(min_length=1)
    GEMINI_MODEL: str = Field(default="gemini-2.5-pro", min_length=1)
    GEMINI_BASE_URL: str = "https://generativelanguage.googleapis.com"

    TIMEZONE: str = "Asia/Almaty"
    # Rehearsing another moment (a Monday morning, a holiday) on the sandbox; 0 in production.
    CLOCK_OFFSET_SECONDS: float = Field(default=0, ge=-MAX_CLOCK_OFFSET_S, le=MAX_CLOCK_OFFSET_S)
    LOG_LEVEL: str = "INFO"
    ADMIN_API_KEY: SecretStr = Field(min_length=1)
    # Name:phone,... — who gets notifications (service_kit/managers.py); empty: notifications are off.
    MANAGERS: Annotated[tuple[Manager, ...], NoDecode] = ()
    RATE_LIMIT_PER_MINUTE: int = Field(default=120, ge=1)

    @field_validator("RABBITMQ_URL")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value

    @field_validator("GEMINI_BASE_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("MANAGERS", mode="before")
    @classmethod
    def _managers(cls, value: object) -> object:
        return parse_managers(value) if isinstance(value, str) else value

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
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.TIMEZONE)

    @property
    def manager_phones(self) -> frozenset[str]:
        return frozenset(manager.phone for manager in self.MANAGERS)

    def queue_names(self) -> dict[str, str]:
        """The real queue names, by contract name."""
        return {
            "incoming_messages": self.QUEUE_INCOMING_MESSAGES,
            "outgoing_messages": self.QUEUE_OUTGOING_MESSAGES,
            "voice_transcription": self.QUEUE_VOICE_TRANSCRIPTION,
        }

    def secret_values(self) -> list[str]:
        """What the logs must never show: every SecretStr setting and the passwords in the URLs."""
        values = [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]
        for url in (self.DATABASE_URL, self.RABBITMQ_URL):
            password = urlsplit(url).password
            if password:
                values += [password, unquote(password)]
        return [value for value in values if value]


def load_settings(cls: type[SettingsT], **overrides: object) -> SettingsT:
    """Settings from the environment (and .env); ConfigurationError names each bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(configuration_errors(exc)) from exc


def configuration_errors(error: ValidationError) -> list[str]:
    """One readable line per bad variable, e.g. "Configuration error: GEMINI_API_KEY is required"."""
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        if item["type"] == "missing" or item.get("input") == "":
            lines.append(f"Configuration error: {name} is required")
        else:
            lines.append(
                f"Configuration error: {name} is malformed: {item['msg'].removeprefix('Value error, ')}"
            )
    return lines
