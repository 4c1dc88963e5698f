"""Gateway configuration: the spec's environment variable names, read once at start-up."""

from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ASYNC_DRIVER = "postgresql+asyncpg://"
# Every queue's .retry queue is declared (by both services) with this TTL: a shorter delay is set per message.
RETRY_QUEUE_TTL_S = 5.0
MAX_CLOCK_OFFSET_S = 10 * 366 * 24 * 3600


class ConfigurationError(Exception):
    """Start-up configuration is unusable; `lines` holds one message per bad variable."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def normalize_database_url(url: str) -> str:
    """Hosts hand out postgres:// or postgresql://; the service always talks through asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return _ASYNC_DRIVER + url[len(prefix) :]
    raise ValueError("must start with postgres://, postgresql:// or postgresql+asyncpg://")


class DatabaseSettings(BaseSettings):
    """The part of the configuration migrations need (alembic runs without the Wappi secrets)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    DATABASE_URL: str = Field(min_length=1, repr=False)  # it carries a password

    @field_validator("DATABASE_URL")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalize_database_url(value.strip())


class Settings(DatabaseSettings):
    PROJECT_NAME: str = "whatsapp-gateway"

    # repr=False: a settings object that ends up in a log line or a traceback does not show them.
    WAPPI_TOKEN: str = Field(min_length=1, repr=False)
    WAPPI_PROFILE_ID: str = Field(min_length=1)
    WAPPI_BASE_URL: str = "https://wappi.pro"

    RABBITMQ_URL: str = Field(min_length=1, repr=False)
    QUEUE_INCOMING_MESSAGES: str = "incoming_messages"
    QUEUE_OUTGOING_MESSAGES: str = "outgoing_messages"
    QUEUE_VOICE_TRANSCRIPTION: str = "voice_transcription"

    POLLING_INTERVAL: float = Field(default=5, gt=0)
    LOG_LEVEL: str = "INFO"
    TIMEZONE: str = "Asia/Almaty"
    # Runs the service's clock this many seconds ahead of the machine's (negative: behind), e.g. to rehearse
    # a Monday morning or a holiday on the sandbox. Bounded to ten years: further is a typo.
    CLOCK_OFFSET_SECONDS: float = Field(default=0.0, ge=-MAX_CLOCK_OFFSET_S, le=MAX_CLOCK_OFFSET_S)

    GEMINI_API_KEY: str = Field(min_length=1, repr=False)
    GEMINI_MODEL: str = "gemini-2.5-pro"
    GEMINI_BASE_URL: str = "https://generativelanguage.googleapis.com"

    ADMIN_API_KEY: str = Field(min_length=1, repr=False)
    PORT: int = Field(default=8001, ge=1, le=65535)
    RATE_LIMIT_PER_MINUTE: int = Field(default=120, ge=1)

    # How a message whose handling failed transiently is tried again: after RETRY_DELAY_SECONDS through
    # the queue's .retry queue; each Wappi call itself is tried WAPPI_RETRY_ATTEMPTS times, waiting
    # WAPPI_RETRY_BACKOFF_SECONDS, then twice that, ... (with jitter) in between.
    RETRY_DELAY_SECONDS: float = Field(default=RETRY_QUEUE_TTL_S, gt=0, le=RETRY_QUEUE_TTL_S)
    # With the 5 s retry delay, about 2.5+ minutes of retrying before a message is parked in its DLQ.
    MAX_DELIVERY_ATTEMPTS: int = Field(default=30, ge=1, le=1000)
    WAPPI_RETRY_ATTEMPTS: int = Field(default=4, ge=1, le=10)
    WAPPI_RETRY_BACKOFF_SECONDS: float = Field(default=0.5, gt=0, le=10)

    @field_validator("RABBITMQ_URL")
    @classmethod
    def _amqp_scheme(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value

    @field_validator("WAPPI_BASE_URL", "GEMINI_BASE_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

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
        level = value.upper()
        if level not in {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.TIMEZONE)

    @property
    def secrets(self) -> list[str]:
        """Values that must never reach a log line: the tokens and keys, and the passwords in the URLs."""
        passwords = [urlsplit(url).password or "" for url in (self.DATABASE_URL, self.RABBITMQ_URL)]
        encoded_and_plain = [form for p in passwords if p for form in (p, unquote(p))]
        return [self.WAPPI_TOKEN, self.GEMINI_API_KEY, self.ADMIN_API_KEY, *encoded_and_plain]


def describe_errors(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else "settings"
        if item["type"] == "missing":
            lines.append(f"Configuration error: {name} is required")
        elif item["type"] == "string_too_short" and not item.get("input"):
            lines.append(f"Configuration error: {name} is required")
        else:
            reason = item["msg"].removeprefix("Value error, ")
            lines.append(f"Configuration error: {name} is invalid ({reason})")
    return lines


def load_settings(**overrides) -> Settings:
    """Settings from the environment (and .env); raises ConfigurationError naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_errors(exc)) from exc
