"""The gateway's settings: the kit's shared ones (database, broker, queues, Gemini, admin API, clock, logs)
and its own, under the spec's variable names, read once at start-up. MANAGERS — the only numbers a
notification goes to — is one of the shared ones (service_kit/managers.py)."""

from pydantic import Field, SecretStr, field_validator

from service_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    PROJECT_NAME: str = "whatsapp-gateway"

    WAPPI_TOKEN: SecretStr = Field(min_length=1)
    WAPPI_PROFILE_ID: str = Field(min_length=1)
    WAPPI_BASE_URL: str = "https://wappi.pro"

    POLLING_INTERVAL: float = Field(default=5, gt=0)
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

    def api_base_urls(self) -> dict[str, str]:
        return {**super().api_base_urls(), "WAPPI_BASE_URL": self.WAPPI_BASE_URL}

    @field_validator("WAPPI_BASE_URL")
    @classmethod
    def _wappi_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")
