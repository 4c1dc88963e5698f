"""Admin API (/sandbox/...): what tests and demos use to drive the fake chats and read what the bot did."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, model_validator

from sandbox.conversations import InjectRequest, inject_message, normalize_phone
from sandbox.deps import BackgroundDep, StateDep
from sandbox.fake_llm import JOBS
from sandbox.faults import ENDPOINTS, GEMINI_ENDPOINT
from sandbox.gemini_answers import BAD_ANSWERS
from sandbox.messages import dialog_id, render_message
from sandbox.pushes import after_customer_message
from sandbox.state import Fault, Script

router = APIRouter(prefix="/sandbox")

ADMIN_PROFILE_ID = "sandbox"
Endpoint = Literal[ENDPOINTS]  # type: ignore[valid-type]
BadAnswer = Literal[BAD_ANSWERS]  # type: ignore[valid-type]
Job = Literal[JOBS]  # type: ignore[valid-type]


class FaultRequest(BaseModel):
    """A transport fault on an endpoint (status, raw body, latency), or a bad Gemini answer (answer, job)."""

    endpoint: Endpoint | None = None
    status: int | None = Field(default=None, ge=100, le=599)
    latency_ms: int = Field(default=0, ge=0)
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=0)
    body: str | None = None
    answer: BadAnswer | None = None
    job: Job | None = None

    @model_validator(mode="after")
    def one_kind_of_fault(self) -> FaultRequest:
        if self.answer is None:
            if self.endpoint is None:
                raise ValueError("endpoint is required (or answer, for a bad Gemini answer)")
            if self.job is not None:
                raise ValueError("job limits a bad answer: give answer too")
            return self
        if self.endpoint not in (None, GEMINI_ENDPOINT):
            raise ValueError("a bad answer is a gemini fault")
        if self.status is not None or self.body is not None:
            raise ValueError("a bad answer is HTTP 200: leave status and body out")
        self.endpoint = GEMINI_ENDPOINT
        return self


class ScriptRequest(BaseModel):
    job: Job
    when: str = Field(min_length=1)
    answer: dict[str, Any]
    count: int | None = Field(default=None, ge=1)


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/reset")
async def reset(state: StateDep) -> dict[str, str]:
    state.reset()
    return {"status": "ok"}


@router.post("/messages")
async def inject(
    req: InjectRequest, request: Request, state: StateDep, background: BackgroundDep
) -> dict[str, Any]:
    message = inject_message(state, req)
    after_customer_message(background, state, message, str(request.base_url))
    return render_message(message, str(request.base_url), ADMIN_PROFILE_ID)


class InjectBatch(BaseModel):
    messages: list[InjectRequest] = Field(min_length=1, max_length=1000)


@router.post("/messages/batch")
async def inject_batch(
    batch: InjectBatch, request: Request, state: StateDep, background: BackgroundDep
) -> dict[str, Any]:
    """Several messages written one after another, in one request: a load generator offering hundreds a
    second would otherwise spend a good share of the machine's CPU on requests alone."""
    return {"messages": [await inject(req, request, state, background) for req in batch.messages]}


@router.get("/sent")
async def sent(state: StateDep, phone: str | None = None) -> dict[str, Any]:
    records = state.sent if phone is None else [r for r in state.sent if r["recipient"] == phone]
    return {"messages": list(records)}


@router.get("/read")
async def read(state: StateDep) -> dict[str, Any]:
    return {"message_ids": list(state.read_ids)}


@router.get("/chats/{phone_or_chat_id}")
async def chat_view(phone_or_chat_id: str, request: Request, state: StateDep) -> dict[str, Any]:
    """A chat as the customer sees it, oldest first; a chat nobody wrote in yet is simply empty."""
    phone = normalize_phone(phone_or_chat_id)
    chat_id = dialog_id(phone) if phone else phone_or_chat_id
    chat = state.chats.get(chat_id)
    base_url = str(request.base_url)
    return {
        "chat_id": chat_id,
        "chat_type": chat.chat_type if chat else "dialog",
        "name": chat.name if chat else None,
        "messages": [render_message(m, base_url, ADMIN_PROFILE_ID) for m in (chat.messages if chat else [])],
    }


@router.post("/faults")
async def set_fault(req: FaultRequest, state: StateDep) -> dict[str, Any]:
    fault = Fault(**req.model_dump())
    state.set_fault(fault)
    return {"status": "ok", "fault": fault.as_dict()}


@router.get("/faults")
async def list_faults(state: StateDep) -> dict[str, Any]:
    return {"faults": [f.as_dict() for f in state.faults.values()]}


@router.delete("/faults")
async def clear_faults(state: StateDep, endpoint: str | None = None) -> dict[str, str]:
    state.clear_faults(endpoint)
    return {"status": "ok"}


@router.post("/gemini/scripts")
async def add_script(req: ScriptRequest, state: StateDep) -> dict[str, Any]:
    script = Script(**req.model_dump())
    state.add_script(script)
    return {"status": "ok", "script": script.as_dict()}


@router.get("/gemini/scripts")
async def list_scripts(state: StateDep) -> dict[str, Any]:
    return {"scripts": [s.as_dict() for s in state.scripts]}


@router.delete("/gemini/scripts")
async def clear_scripts(state: StateDep) -> dict[str, str]:
    state.clear_scripts()
    return {"status": "ok"}


@router.get("/gemini/prompts")
async def prompts(state: StateDep, job: str | None = None) -> dict[str, Any]:
    """The newest prompts the fake model was sent (oldest first), of one job if asked."""
    return {"prompts": [p for p in state.prompts if job is None or p["job"] == job]}


class ClockRequest(BaseModel):
    offset_seconds: float = Field(ge=-366 * 86400, le=366 * 86400)


@router.get("/clock")
async def clock(state: StateDep) -> dict[str, Any]:
    """The sandbox's "now" (what it stamps messages with), which may run ahead of the machine's."""
    now = state.clock()
    return {"now": now.isoformat(), "time": int(now.timestamp()), "offset_seconds": state.clock_offset_s}


@router.put("/clock")
async def set_clock(body: ClockRequest, state: StateDep) -> dict[str, Any]:
    """Moves the sandbox's clock to run `offset_seconds` ahead of the machine's, as a service started with
    that CLOCK_OFFSET_SECONDS does: a running sandbox can join a service started at another moment."""
    state.clock_offset_s = body.offset_seconds
    return await clock(state)


@router.get("/stats")
async def stats(state: StateDep) -> dict[str, Any]:
    return state.stats()
