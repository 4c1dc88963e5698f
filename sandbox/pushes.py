"""What the fake Wappi does on its own after a message lands in a chat: it pushes the message to the
registered webhook (as real Wappi does, `{"messages": [...]}` with the item's `wh_type`: incoming_message
for the client's, outgoing_message_phone for one typed on the business phone, outgoing_message_api for the
bot's send, followed by its delivery tick; optionally dropping a share of pushes), and a contact with an
auto-responder answers every bot message after a short delay (another business's bot).

The webhook is registered as on real Wappi (POST /api/webhook/url/set and /api/webhook/types/set, served by
sandbox/wappi.py) or by the admin API, which can also drop a share of pushes: POST/GET/DELETE
/sandbox/webhook, POST/GET/DELETE /sandbox/autoresponders.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import asdict
from typing import Any, Literal

import httpx
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, HttpUrl

from sandbox.background import Background
from sandbox.conversations import InjectRequest, inject_message, normalize_phone
from sandbox.deps import StateDep
from sandbox.messages import render_message
from sandbox.state import WEBHOOK_TYPES, AutoResponder, Chat, SandboxState, Webhook

log = logging.getLogger("sandbox.pushes")
router = APIRouter(prefix="/sandbox")
PROFILE_ID = "sandbox"


def after_customer_message(
    background: Background, state: SandboxState, message: dict[str, Any], base_url: str
) -> None:
    """A message written into a chat (by a customer, or on the business phone): pushed to the webhook."""
    kind = "outgoing_message_phone" if message["is_me"] else "incoming_message"
    _push(background, state, kind, {**render_message(message, base_url, PROFILE_ID), "wh_type": kind})


def after_bot_send(
    background: Background, state: SandboxState, chat: Chat, message: dict[str, Any], base_url: str
) -> None:
    """A message the bot sent through the API: it and its delivery tick are pushed, and an auto-responder
    answers."""
    sent = {**render_message(message, base_url, PROFILE_ID), "wh_type": "outgoing_message_api"}
    _push(background, state, "outgoing_message_api", sent)
    tick = {
        "wh_type": "messages_status",
        "id": message["id"],
        "status": "delivered",
        "chatId": chat.id,
        "time": message["time"],
        "timestamp": message["timestamp"],
    }
    _push(background, state, "delivery_status", tick)
    responder = state.autoresponders.get(chat.id.split("@", 1)[0])
    if responder is not None and chat.chat_type == "dialog":
        background.spawn(_answer_back(background, state, responder, base_url))


def register_webhook(state: SandboxState, url: str) -> None:
    """A URL registered as through Wappi's API: what was set besides the URL stays."""
    if state.webhook is None:
        state.webhook = Webhook(url=url)
    else:
        state.webhook.url = url


def _push(background: Background, state: SandboxState, kind: str, message: dict[str, Any]) -> None:
    webhook = state.webhook
    if webhook is None or kind not in webhook.types:
        return
    if webhook.drop_rate and webhook.rng.random() < webhook.drop_rate:
        webhook.dropped += 1
        return
    background.spawn(_post(background, webhook, message))


async def _post(background: Background, webhook: Webhook, message: dict[str, Any]) -> None:
    try:
        answer = await background.http.post(webhook.url, json={"messages": [message]})
        answer.raise_for_status()
        webhook.pushed += 1
    except httpx.HTTPError as exc:
        webhook.failed += 1  # real Wappi does not retry a failed push either
        log.warning("Webhook push to %s failed: %s", webhook.url, exc)


async def _answer_back(
    background: Background, state: SandboxState, responder: AutoResponder, base_url: str
) -> None:
    await asyncio.sleep(responder.delay_ms / 1000)
    responder.answered += 1
    message = inject_message(state, InjectRequest(phone=responder.phone, text=responder.text))
    after_customer_message(background, state, message, base_url)


class WebhookRequest(BaseModel):
    url: HttpUrl
    drop_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = None  # which pushes are dropped, the same in every run with the same seed
    types: list[Literal[WEBHOOK_TYPES]] = list(WEBHOOK_TYPES)  # type: ignore[valid-type]


class AutoResponderRequest(BaseModel):
    phone: str
    text: str = "Спасибо за обращение! Мы ответим вам в рабочее время."
    delay_ms: int = Field(default=300, ge=0, le=60_000)


@router.post("/webhook")
async def set_webhook(req: WebhookRequest, state: StateDep) -> dict[str, Any]:
    state.webhook = Webhook(
        url=str(req.url), drop_rate=req.drop_rate, types=tuple(req.types), rng=random.Random(req.seed)
    )
    return {"status": "ok"}


@router.get("/webhook")
async def webhook_stats(state: StateDep) -> dict[str, Any]:
    return {"webhook": state.webhook.stats() if state.webhook else None}


@router.delete("/webhook")
async def clear_webhook(state: StateDep) -> dict[str, str]:
    state.webhook = None
    return {"status": "ok"}


@router.post("/autoresponders")
async def add_autoresponder(req: AutoResponderRequest, state: StateDep) -> dict[str, Any]:
    phone = normalize_phone(req.phone)
    if phone is None:
        raise HTTPException(422, detail="phone must be 5..20 digits")
    state.autoresponders[phone] = AutoResponder(phone=phone, text=req.text, delay_ms=req.delay_ms)
    return {"status": "ok"}


@router.get("/autoresponders")
async def list_autoresponders(state: StateDep) -> dict[str, Any]:
    return {"autoresponders": [asdict(r) for r in state.autoresponders.values()]}


@router.delete("/autoresponders")
async def clear_autoresponders(state: StateDep) -> dict[str, str]:
    state.autoresponders.clear()
    return {"status": "ok"}
