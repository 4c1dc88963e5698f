"""The gateway's settings: the kit's shared ones (database, broker, queues, Gemini, admin API, clock, logs)
and its own, under the spec's variable names, read once at start-up. MANAGERS — the only numbers a
notification goes to — is one of the shared ones (service_kit/managers.py)."""

import re

from pydantic import Field, SecretStr, field_validator

from service_kit.settings import ServiceSettings

MIN_WEBHOOK_SECRET = 32
WEBHOOK_SECRET_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")


class Settings(ServiceSettings):
    PROJECT_NAME: str = "whatsapp-gateway"

    WAPPI_TOKEN: SecretStr = Field(min_length=1)
    WAPPI_PROFILE_ID: str = Field(min_length=1)
    WAPPI_BASE_URL: str = "https://wappi.pro"

    POLLING_INTERVAL: float = Field(default=5, gt=0)
    # Backpressure: while more than this wait unread by the agent, the poller leaves new messages at Wappi;
    # a cycle reads no more chats with news than this leaves room for.
    MAX_INCOMING_BACKLOG: int = Field(default=100, ge=1)
    PORT: int = Field(default=8001, ge=1, le=65535)

    # With the 5 s retry delay, about 2.5+ minutes of retrying before a message is parked in its DLQ.
    MAX_DELIVERY_ATTEMPTS: int = Field(default=30, ge=1, le=1000)
    # Each Wappi call is tried WAPPI_RETRY_ATTEMPTS times, waiting WAPPI_RETRY_BACKOFF_SECONDS, then twice
    # that, ... (with jitter) in between, before the message goes to the retry queue.
    WAPPI_RETRY_ATTEMPTS: int = Field(default=4, ge=1, le=10)
    WAPPI_RETRY_BACKOFF_SECONDS: float = Field(default=0.5, gt=0, le=10)
    # Sends through Wappi per minute across the whole WhatsApp number (every replica): evenly spaced, a send
    # beyond it waits its turn. WhatsApp bans numbers that send too many messages too fast.
    MAX_SENDS_PER_MINUTE: int = Field(default=30, ge=1)

    # A voice note longer or larger than this is not transcribed: the client is asked to write instead.
    MAX_VOICE_SECONDS: float = Field(default=300, gt=0)
    MAX_VOICE_BYTES: int = Field(default=10 * 1024 * 1024, ge=1024)

    # Webhook mode: Wappi pushes each message to POST /webhooks/wappi/<secret>; unset, the route is off (404).
    WAPPI_WEBHOOK_SECRET: SecretStr | None = None
    # While pushes arrive, polling is only the safety net for a lost push: this slow. No push for this long,
    # and polling is back to every POLLING_INTERVAL.
    WAPPI_WEBHOOK_POLL_INTERVAL: float = Field(default=60, gt=0, le=3600)
    # Pushes per minute one address may make, counted apart from RATE_LIMIT_PER_MINUTE.
    WAPPI_WEBHOOK_RATE_LIMIT_PER_MINUTE: int = Field(default=3000, ge=1)

    @field_validator("WAPPI_WEBHOOK_SECRET", mode="before")
    @classmethod
    def _webhook_secret(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None  # empty in .env: webhook mode off
        secret = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        # It is the webhook's only credential and sits in a URL: long, and nothing a URL would mangle.
        if len(secret) < MIN_WEBHOOK_SECRET or not WEBHOOK_SECRET_CHARACTERS.fullmatch(secret):
            raise ValueError(
                f"must be at least {MIN_WEBHOOK_SECRET} characters of A-Z, a-z, 0-9, '-' and '_' "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    def api_base_urls(self) -> dict[str, str]:
        return {**super().api_base_urls(), "WAPPI_BASE_URL": self.WAPPI_BASE_URL}

    @field_validator("WAPPI_BASE_URL")
    @classmethod
    def _wappi_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")
