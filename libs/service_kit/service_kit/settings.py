"""The settings both services read (the spec's variable names), their checks, and one readable line per bad
variable at start-up. Each service's Settings extends ServiceSettings with its own."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service_kit.managers import Manager, parse_managers

ASYNCPG_SCHEME = "postgresql+asyncpg://"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Every queue's .retry queue is declared with the delay of contracts/queues.json; a shorter one rides on
# each message. Ten years either way is the furthest a rehearsal of another moment may go.
MAX_RETRY_DELAY_S = 5.0
MAX_CLOCK_OFFSET_S = 10 * 366 * 86400
# Outside the sandbox (an API base URL on one of these domains) the admin key must be this long.
REAL_API_DOMAINS = ("wappi.pro", "googleapis.com")
MIN_ADMIN_KEY_LENGTH = 32
# A missing variable that another set of variables can stand for, and how the error line says so.
ALTERNATIVES = {"RABBITMQ_URL": "RABBITMQ_HOST, RABBITMQ_USER and RABBITMQ_PASSWORD"}

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

    # The broker as one URL, or in parts (RABBITMQ_HOST, RABBITMQ_USER, RABBITMQ_PASSWORD) as hosts hand them
    # out, e.g. Render: its private service's address and its generated password.
    RABBITMQ_URL: str = Field(min_length=1, repr=False)
    RABBITMQ_HOST: str | None = None
    RABBITMQ_PORT: int = Field(default=5672, ge=1, le=65535)
    RABBITMQ_USER: str | None = None
    RABBITMQ_PASSWORD: SecretStr | None = None
    QUEUE_INCOMING_MESSAGES: str = Field(default="incoming_messages", min_length=1)
    QUEUE_OUTGOING_MESSAGES: str = Field(default="outgoing_messages", min_length=1)
    QUEUE_VOICE_TRANSCRIPTION: str = Field(default="voice_transcription", min_length=1)
    QUEUE_CONTACT_ERASURES: str = Field(default="contact_erasures", min_length=1)
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
    # The proxies whose X-Forwarded-For is believed (addresses or networks): the client is the right-most
    # address in it that is not one of them, so a client cannot choose its own address.
    FORWARDED_ALLOW_IPS: str = "127.0.0.1,::1"
    # Messages, transcripts and payloads older than this are deleted once a day (service_kit/retention.py).
    RETENTION_DAYS: int = Field(default=365, ge=1, le=36500)

    @model_validator(mode="before")
    @classmethod
    def _broker_from_parts(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("RABBITMQ_URL"):
            return data
        parts = [_plain(data.get(name)) for name in ("RABBITMQ_HOST", "RABBITMQ_USER", "RABBITMQ_PASSWORD")]
        if not all(parts):
            return data  # RABBITMQ_URL is then reported missing, naming the parts as the alternative
        host, user, password = parts
        port = data.get("RABBITMQ_PORT") or 5672
        return {
            **data,
            "RABBITMQ_URL": f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/",
        }

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

    @field_validator("FORWARDED_ALLOW_IPS")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            if item == "*":
                raise ValueError(
                    "'*' lets any client pick its address through X-Forwarded-For; name the proxy"
                )
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network") from exc
        return value

    @model_validator(mode="after")
    def _long_admin_key_outside_the_sandbox(self) -> ServiceSettings:
        real = [f"{name}={url}" for name, url in self.api_base_urls().items() if _on_real_api(url)]
        if real and len(self.ADMIN_API_KEY.get_secret_value()) < MIN_ADMIN_KEY_LENGTH:
            raise PydanticCustomError(
                "admin_key_too_short",
                "ADMIN_API_KEY must be at least {length} characters when the service talks to the real API "
                "({real}); only a sandbox run may use a shorter key",
                {"length": MIN_ADMIN_KEY_LENGTH, "real": ", ".join(real)},
            )
        return self

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

    def api_base_urls(self) -> dict[str, str]:
        """The external APIs this service calls, by setting (the gateway adds Wappi's)."""
        return {"GEMINI_BASE_URL": self.GEMINI_BASE_URL}

    def queue_names(self) -> dict[str, str]:
        """The real queue names, by contract name."""
        return {
            "incoming_messages": self.QUEUE_INCOMING_MESSAGES,
            "outgoing_messages": self.QUEUE_OUTGOING_MESSAGES,
            "voice_transcription": self.QUEUE_VOICE_TRANSCRIPTION,
            "contact_erasures": self.QUEUE_CONTACT_ERASURES,
        }

    def secret_values(self) -> list[str]:
        """What the logs must never show: every SecretStr setting and the passwords in the URLs."""
        values = [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]
        for url in (self.DATABASE_URL, self.RABBITMQ_URL):
            password = urlsplit(url).password
            if password:
                values += [password, unquote(password)]
        return [value for value in values if value]


def _plain(value: object) -> str | None:
    """A raw setting as text, None when unset or blank."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    text = "" if value is None else str(value).strip()
    return text or None


def _on_real_api(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return any(host == domain or host.endswith("." + domain) for domain in REAL_API_DOMAINS)


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
        name = ".".join(str(part) for part in item["loc"])
        if not name:  # a check across variables: its message names them
            lines.append(f"Configuration error: {item['msg'].removeprefix('Value error, ')}")
        elif item["type"] == "missing" or item.get("input") == "":
            alternative = f" (or {ALTERNATIVES[name]})" if name in ALTERNATIVES else ""
            lines.append(f"Configuration error: {name} is required{alternative}")
        else:
            lines.append(
                f"Configuration error: {name} is malformed: {item['msg'].removeprefix('Value error, ')}"
            )
    return lines
