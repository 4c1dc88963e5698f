"""Whether a failure is worth another try: the one rule the consumers and the outbox follow.

An exception says so itself with a `transient` attribute (True: try again later, False: give up now);
TransientError and PermanentError are the plain carriers. Without one, a failure of the infrastructure (the
network, the database driver, the broker) is transient and anything else, a bug, is not.
"""

from __future__ import annotations

from aio_pika.exceptions import AMQPError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class TransientError(Exception):
    """Worth another attempt later (through the retry queue)."""

    transient = True


class PermanentError(Exception):
    """Retrying cannot help (a refused recipient, a rejected request): dead-letter with this reason."""

    transient = False


class InvalidMessage(PermanentError):
    """A body that does not decode or does not fit its contract: it goes to the DLQ as it is."""


def is_transient(exc: BaseException) -> bool:
    flagged = getattr(exc, "transient", None)
    if isinstance(flagged, bool):
        return flagged
    # Any driver error: a database restart surfaces as several kinds (closed mid-operation, bad protocol
    # state); a real bug among them is still dead-lettered once the delivery attempts run out.
    return isinstance(exc, OSError | TimeoutError | DBAPIError | PoolTimeout | AMQPError)
