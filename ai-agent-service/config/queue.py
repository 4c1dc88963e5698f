"""The system's queues as contracts/ describes them, under the settings' names (service_kit declares their
topology and connects; this service only says where contracts/ is)."""

from __future__ import annotations

from pathlib import Path

from config.settings import Settings
from service_kit.queues import Queues

# The repo root's contracts/: ../contracts next to the service here, /app/contracts in Docker.
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


def load_queues(settings: Settings) -> Queues:
    return Queues.load(CONTRACTS_DIR, settings.queue_names())
