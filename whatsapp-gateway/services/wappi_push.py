"""What a Wappi webhook push holds. Wappi POSTs `{"messages": [...]}` (one object instead of the list, or a
bare item, is seen too); each item says what it is in `wh_type`. Messages written in a chat (by the client,
on the business phone, or through the API) are read like polled ones; delivery ticks, profile statuses and
anything else are acknowledged and left out."""

from typing import Any

from pydantic import ValidationError

from services.wappi_models import WappiMessage

# A message in a chat: the client's, one typed on the business phone, one sent through the API (our own).
MESSAGE_EVENTS = frozenset({"incoming_message", "outgoing_message_phone", "outgoing_message_api"})
ERRORS_SHOWN = 3


class MalformedPush(ValueError):
    """The body is not a push the gateway can read; the text says what is wrong with it."""


def read_push(payload: Any) -> list[WappiMessage]:
    """The push's messages in the order given; MalformedPush (nothing of it kept) when any item of it is not
    readable as what it says it is."""
    if not isinstance(payload, dict):
        raise MalformedPush("the body must be a JSON object")
    if "messages" in payload:
        items = payload["messages"]
    elif "wh_type" in payload:
        items = [payload]
    else:
        raise MalformedPush('the body must hold "messages", a list of Wappi webhook items')
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise MalformedPush('"messages" must be a list of Wappi webhook items')
    messages = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedPush(f"messages[{index}] must be an object")
        # An item without wh_type is read as a message: leaving it out could lose a client's words.
        event = item.get("wh_type") or "incoming_message"
        if not isinstance(event, str):
            raise MalformedPush(f"messages[{index}].wh_type must be a string")
        if event not in MESSAGE_EVENTS:
            continue
        try:
            messages.append(WappiMessage.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in exc.errors()[:ERRORS_SHOWN]
            )
            raise MalformedPush(f"messages[{index}] is not a readable message: {problems}") from None
    return messages
