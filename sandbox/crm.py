"""Fake CRMs for the manager hand-off: Bitrix24's inbound-webhook REST API (leads, duplicates by phone,
activities, timeline comments) as it answers, with its per-webhook request limit, and a plain receiver for
signed JSON events.

Bitrix24: POST /rest/{user_id}/{secret}/{method}(.json) with a JSON or form body; answers
`{"result": ..., "time": {...}}` or `{"error": CODE, "error_description": ...}`.
Events: POST /crm/events records each request (headers and body); GET /sandbox/crm/events lists them.
Admin: GET /sandbox/bitrix24 (leads, activities and comments). Faults: endpoints "bitrix24" and "crm_events".
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.crm_portal import Bitrix24
from sandbox.deps import StateDep
from sandbox.faults import pass_through_faults

router = APIRouter()
OWNER_LEAD = 1
REQUIRED_ACTIVITY_FIELDS = ("OWNER_TYPE_ID", "OWNER_ID", "TYPE_ID", "SUBJECT", "COMMUNICATIONS")


class BitrixError(Exception):
    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description)
        self.code, self.description, self.status = code, description, status


def _answer(result: Any, started: float) -> dict[str, Any]:
    finished = time.time()
    return {
        "result": result,
        "time": {"start": started, "finish": finished, "duration": finished - started, "processing": 0.0},
    }


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def _lead_add(crm: Bitrix24, params: dict[str, Any]) -> int:
    fields = params.get("fields")
    if not isinstance(fields, dict) or not fields.get("TITLE"):
        raise BitrixError("", "The field TITLE is not defined or invalid.")
    lead_id = crm.new_id()
    crm.leads[lead_id] = {"ID": lead_id, **fields}
    return lead_id


def _find_by_phone(crm: Bitrix24, params: dict[str, Any]) -> Any:
    if str(params.get("type", "")).upper() != "PHONE" or not isinstance(params.get("values"), list):
        raise BitrixError("", "Parameter 'type' or 'values' is not defined or invalid.")
    wanted = {_digits(v) for v in params["values"]}
    found = [
        lead_id
        for lead_id, lead in crm.leads.items()
        if any(_digits(phone.get("VALUE")) in wanted for phone in lead.get("PHONE") or [])
    ]
    return {"LEAD": found} if found else []  # Bitrix24 answers an empty list when nothing matches


def _activity_add(crm: Bitrix24, params: dict[str, Any]) -> int:
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise BitrixError("", "The field fields is not defined or invalid.")
    for name in REQUIRED_ACTIVITY_FIELDS:
        if not fields.get(name):
            raise BitrixError("", f"The field {name} is not defined or invalid.")
    if int(fields["OWNER_TYPE_ID"]) == OWNER_LEAD and int(fields["OWNER_ID"]) not in crm.leads:
        raise BitrixError("", "Owner element is not found.")
    activity_id = crm.new_id()
    crm.activities[activity_id] = {"ID": activity_id, **fields}
    return activity_id


def _comment_add(crm: Bitrix24, params: dict[str, Any]) -> int:
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise BitrixError("", "The field fields is not defined or invalid.")
    for name in ("ENTITY_ID", "ENTITY_TYPE", "COMMENT"):
        if not fields.get(name):
            raise BitrixError("", f"The field {name} is not defined or invalid.")
    if str(fields["ENTITY_TYPE"]).lower() == "lead" and int(fields["ENTITY_ID"]) not in crm.leads:
        raise BitrixError("", "Entity not found.")
    comment_id = crm.new_id()
    crm.comments[comment_id] = {"ID": comment_id, **fields}
    return comment_id


METHODS = {
    "crm.lead.add": _lead_add,
    "crm.duplicate.findbycomm": _find_by_phone,
    "crm.activity.add": _activity_add,
    "crm.timeline.comment.add": _comment_add,
}


async def _params(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        value = json.loads(raw or b"{}")
        return value if isinstance(value, dict) else {}
    return {key: values[-1] for key, values in parse_qs(raw.decode()).items()}


@router.post("/rest/{user_id}/{secret}/{method}")
async def bitrix24(user_id: str, secret: str, method: str, request: Request, state: StateDep) -> JSONResponse:
    await pass_through_faults(state, "bitrix24")
    started = time.time()
    crm = state.bitrix24
    try:
        if not crm.admit():
            raise BitrixError("QUERY_LIMIT_EXCEEDED", "Too many requests", status=503)
        handler = METHODS.get(method.removesuffix(".json"))
        if handler is None:
            raise BitrixError("ERROR_METHOD_NOT_FOUND", "Method not found!", status=404)
        result = handler(crm, await _params(request))
    except BitrixError as exc:
        return JSONResponse({"error": exc.code, "error_description": exc.description}, status_code=exc.status)
    except (ValueError, TypeError):
        return JSONResponse({"error": "", "error_description": "Invalid request."}, status_code=400)
    return JSONResponse(_answer(result, started))


@router.get("/sandbox/bitrix24")
async def bitrix24_records(state: StateDep) -> dict[str, Any]:
    return {
        "leads": list(state.bitrix24.leads.values()),
        "activities": list(state.bitrix24.activities.values()),
        "comments": list(state.bitrix24.comments.values()),
    }


@router.post("/crm/events")
async def receive_event(request: Request, state: StateDep) -> dict[str, str]:
    await pass_through_faults(state, "crm_events")
    headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-") or k == "content-type"}
    state.crm_events.append({"headers": headers, "body": (await request.body()).decode("utf-8", "replace")})
    return {"status": "ok"}


@router.get("/sandbox/crm/events")
async def crm_events(state: StateDep) -> dict[str, Any]:
    return {"events": list(state.crm_events)}
