"""Fake Wappi: the /api/sync/... endpoints the gateway calls and the /api/webhook/... ones its owner
registers a webhook with, with Wappi's answer and error shapes."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sandbox.conversations import chat_for_recipient, send_from_bot
from sandbox.deps import BackgroundDep, StateDep
from sandbox.faults import WappiError, parse_json_object, pass_through_faults
from sandbox.messages import BUSINESS_PHONE, iso_astana, render_message
from sandbox.pushes import after_bot_send, register_webhook
from sandbox.state import WEBHOOK_TYPES, Chat, SandboxState

router = APIRouter()


def wappi_call(endpoint: str) -> Callable[..., Awaitable[str]]:
    """Count the call, apply its faults, then check the token and profile_id; yields the profile_id."""

    async def checked(request: Request, state: StateDep) -> str:
        await pass_through_faults(state, endpoint)
        token = request.headers.get("authorization", "").strip()
        if not token or (state.wappi_token is not None and token != state.wappi_token):
            raise WappiError(401, "Authorization token is missing or invalid")
        profile_id = request.query_params.get("profile_id", "").strip()
        if not profile_id:
            raise WappiError(400, "profile_id is required")
        return profile_id

    return checked


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise WappiError(400, f"{name} must be an integer") from None
    if value < 0:
        raise WappiError(400, f"{name} must not be negative")
    return value


def _message_or_400(state: SandboxState, message_id: Any) -> dict[str, Any]:
    if not isinstance(message_id, str) or not message_id:
        raise WappiError(400, "message_id is required")
    message = state.messages.get(message_id)
    if message is None:
        raise WappiError(400, f"message {message_id} not found")
    return message


async def _json_body(request: Request) -> dict[str, Any]:
    payload = parse_json_object(await request.body())
    if payload is None:
        raise WappiError(400, "request body must be a JSON object")
    return payload


def _chat_entry(chat: Chat, base_url: str, profile_id: str) -> dict[str, Any]:
    last = chat.messages[-1]
    entry = {
        "id": chat.id,
        "name": chat.name,
        "chat_type": chat.chat_type,
        "last_time": last["time"],
        "last_message_data": render_message(last, base_url, profile_id),
        "unread": chat.unread(),
    }
    if chat.business_name:
        entry["business_name"] = chat.business_name
    return entry


def _sent_answer(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "done",
        "message_id": message["id"],
        "timestamp": iso_astana(message["time"]),
        "time": message["time"],
    }


ProfileStatus = Annotated[str, Depends(wappi_call("get/status"))]
ProfileChats = Annotated[str, Depends(wappi_call("chats/get"))]
ProfileMessages = Annotated[str, Depends(wappi_call("messages/get"))]
ProfileMessageById = Annotated[str, Depends(wappi_call("messages/id/get"))]
ProfileSend = Annotated[str, Depends(wappi_call("message/send"))]
ProfileReply = Annotated[str, Depends(wappi_call("message/reply"))]
ProfileMarkRead = Annotated[str, Depends(wappi_call("message/mark/read"))]
ProfileDownload = Annotated[str, Depends(wappi_call("media/download"))]
ProfileWebhookUrl = Annotated[str, Depends(wappi_call("webhook/url/set"))]
ProfileWebhookTypes = Annotated[str, Depends(wappi_call("webhook/types/set"))]


@router.get("/api/sync/get/status")
async def get_status(profile_id: ProfileStatus) -> dict[str, Any]:
    return {
        "status": "done",
        "app_status": "open",
        "authorized": True,
        "phone": BUSINESS_PHONE,
        "profile_id": profile_id,
        "platform": "whatsapp",
    }


@router.get("/api/sync/chats/get")
async def get_chats(request: Request, state: StateDep, profile_id: ProfileChats) -> dict[str, Any]:
    limit = _int_param(request, "limit", 20)
    offset = _int_param(request, "offset", 0)
    chats = state.chats_newest_first()
    base_url = str(request.base_url)
    page = [_chat_entry(c, base_url, profile_id) for c in chats[offset : offset + limit]]
    return {"status": "done", "dialogs": page, "total_count": len(chats)}


@router.get("/api/sync/messages/get")
async def get_messages(request: Request, state: StateDep, profile_id: ProfileMessages) -> dict[str, Any]:
    chat_id = request.query_params.get("chat_id", "").strip()
    if not chat_id:
        raise WappiError(400, "chat_id is required")
    limit = _int_param(request, "limit", 50)
    offset = _int_param(request, "offset", 0)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise WappiError(400, "order must be asc or desc")
    chat = state.chats.get(chat_id)
    messages = list(chat.messages) if chat else []
    if order == "desc":
        messages.reverse()
    base_url = str(request.base_url)
    page = [render_message(m, base_url, profile_id) for m in messages[offset : offset + limit]]
    return {"status": "done", "messages": page, "total_count": len(messages)}


@router.get("/api/sync/messages/id/get")
async def get_message(request: Request, state: StateDep, profile_id: ProfileMessageById) -> dict[str, Any]:
    message = _message_or_400(state, request.query_params.get("message_id"))
    return {"status": "done", "message": render_message(message, str(request.base_url), profile_id)}


@router.post("/api/sync/message/send")
async def send_message(
    request: Request, state: StateDep, background: BackgroundDep, _: ProfileSend
) -> dict[str, Any]:
    payload = await _json_body(request)
    recipient, body = payload.get("recipient"), payload.get("body")
    if not isinstance(body, str) or not body.strip():
        raise WappiError(400, "body is required")
    chat = chat_for_recipient(state, str(recipient)) if isinstance(recipient, str | int) else None
    if chat is None:
        raise WappiError(400, "recipient must be a phone number or a group id")
    sent = send_from_bot(state, chat, body, kind="send")
    after_bot_send(background, state, chat, sent, str(request.base_url))
    return _sent_answer(sent)


@router.post("/api/sync/message/reply")
async def reply_message(
    request: Request, state: StateDep, background: BackgroundDep, _: ProfileReply
) -> dict[str, Any]:
    payload = await _json_body(request)
    body = payload.get("body")
    if not isinstance(body, str) or not body.strip():
        raise WappiError(400, "body is required")
    original = _message_or_400(state, payload.get("message_id"))
    chat = state.chats[original["chatId"]]
    sent = send_from_bot(state, chat, body, kind="reply", reply_to=original["id"])
    after_bot_send(background, state, chat, sent, str(request.base_url))
    return _sent_answer(sent)


@router.post("/api/sync/message/mark/read")
async def mark_read(request: Request, state: StateDep, _: ProfileMarkRead) -> dict[str, Any]:
    payload = await _json_body(request)
    message = _message_or_400(state, payload.get("message_id"))
    state.mark_read(message["id"])
    return {"status": "done"}


@router.get("/api/sync/message/media/download")
async def download_media(request: Request, state: StateDep, _: ProfileDownload) -> dict[str, Any]:
    message = _message_or_400(state, request.query_params.get("message_id"))
    stored = state.files.get(message.get("file_name") or "")
    if stored is None:
        raise WappiError(400, f"message {message['id']} has no media")
    data, mime_type = stored
    return {
        "status": "done",
        "file_name": message["file_name"],
        "mime_type": mime_type,
        "file_data": base64.b64encode(data).decode("ascii"),
    }


@router.post("/api/webhook/url/set")
async def set_webhook_url(request: Request, state: StateDep, _: ProfileWebhookUrl) -> dict[str, Any]:
    url = request.query_params.get("url", "").strip()
    if not url.startswith(("http://", "https://")):
        raise WappiError(400, "url must be an http:// or https:// URL")
    register_webhook(state, url)
    return {"status": "done", "detail": "webhook url set"}


@router.post("/api/webhook/types/set")
async def set_webhook_types(request: Request, state: StateDep, _: ProfileWebhookTypes) -> dict[str, Any]:
    try:
        types = json.loads(await request.body())
    except ValueError:
        types = None
    if not isinstance(types, list) or not all(t in WEBHOOK_TYPES for t in types):
        raise WappiError(400, f"body must be a JSON list of webhook types out of {', '.join(WEBHOOK_TYPES)}")
    if state.webhook is None:
        raise WappiError(400, "set the webhook url first")
    state.webhook.types = tuple(types)
    return {"status": "done", "detail": "webhook types set"}


@router.get("/files/{file_name}")
async def download_file(file_name: str, state: StateDep) -> Response:
    """What a message's file_link points to: the raw bytes, no token needed (real links are signed)."""
    await pass_through_faults(state, "files")
    stored = state.files.get(file_name)
    if stored is None:
        return Response(content="Not Found", status_code=404, media_type="text/plain")
    data, mime_type = stored
    return Response(content=data, media_type=mime_type)
