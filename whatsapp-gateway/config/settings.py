"""The gateway's settings: the kit's shared ones (database, broker, queues, Gemini, admin API, clock, logs)
and its own, under the spec's variable names, read once at start-up."""

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from service_kit.settings import ServiceSettings
from utils.whatsapp_ids import is_person_phone, normalize_phone

# What a phone number may be written with: `+7 (701) 123-45-67`.
_PHONE_AS_WRITTEN = re.compile(r"[0-9+()\-\s]+")
MANAGERS_EXAMPLE = "Айгерим:77011234567,Данияр:77017654321"


@dataclass(frozen=True)
class Manager:
    name: str
    phone: str  # in the whitelist's normal form (utils.whatsapp_ids.normalize_phone): 77011234567


def parse_managers(value: str) -> tuple[Manager, ...]:
    """MANAGERS as written: comma-separated `Name:phone` entries; ValueError naming every bad entry."""
    managers: list[Manager] = []
    problems: list[str] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        name, colon, written = (part.strip() for part in entry.rpartition(":"))
        phone = normalize_phone(written)
        if not colon or not name:
            problems.append(f"{entry!r} is not Name:phone")
        elif not _PHONE_AS_WRITTEN.fullmatch(written) or not is_person_phone(phone):
            problems.append(f"{entry!r}: {written!r} is not a phone number")
        elif phone in {manager.phone for manager in managers}:
            problems.append(f"{entry!r}: {phone} is listed twice")
        else:
            managers.append(Manager(name, phone))
    if problems:
        raise ValueError(f"{'; '.join(problems)} (expected e.g. {MANAGERS_EXAMPLE})")
    return tuple(managers)


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
    # The managers notifications (outgoing kind "notification") may go to, and the only numbers they go to.
    MANAGERS: Annotated[tuple[Manager, ...], NoDecode] = ()

    @field_validator("WAPPI_BASE_URL")
    @classmethod
    def _wappi_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("MANAGERS", mode="before")
    @classmethod
    def _managers(cls, value: Any) -> Any:
        return parse_managers(value) if isinstance(value, str) else value

    @property
    def manager_phones(self) -> frozenset[str]:
        return frozenset(manager.phone for manager in self.MANAGERS)
