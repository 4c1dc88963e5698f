"""The queues of contracts/queues.json under the settings' names, and how the gateway names them."""

from pathlib import Path

from config.settings import Settings
from service_kit.queues import Queues

# The repository's contracts/: beside the service here, /app/contracts in the Docker image.
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
# By the sender, the voice worker and the eraser (the agent's forget requests).
CONSUMED = ("outgoing_messages", "voice_transcription", "contact_erasures")
# How /stats and the queue_size gauge name the spec's queues.
SHORT_NAMES = {
    "incoming_messages": "incoming",
    "outgoing_messages": "outgoing",
    "voice_transcription": "voice",
}


def load_queues(settings: Settings) -> Queues:
    return Queues.load(CONTRACTS_DIR, settings.queue_names())
