"""Error bodies of the two faked APIs, and injected faults: latency, error status, raw body, bad answers."""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sandbox.state import SandboxState, answer_fault_key

WAPPI_ENDPOINTS = (
    "get/status",
    "chats/get",
    "messages/get",
    "messages/id/get",
    "message/send",
    "message/reply",
    "message/mark/read",
    "media/download",
    "files",
)
GEMINI_ENDPOINT = "gemini"
CRM_ENDPOINTS = ("bitrix24", "crm_events")
ENDPOINTS = (*WAPPI_ENDPOINTS, GEMINI_ENDPOINT, *CRM_ENDPOINTS)

GEMINI_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GEMINI_FAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    503: "The model is overloaded. Please try again later.",
}


class WappiError(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


class GeminiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InjectedFault(Exception):
    """Carries the ready response of a fault so it bypasses the route entirely."""

    def __init__(self, response: Response) -> None:
        super().__init__("injected fault")
        self.response = response


def wappi_error_response(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"status": "error", "detail": detail}, status_code=status_code)


def gemini_error_response(code: int, message: str) -> JSONResponse:
    status = GEMINI_STATUS_NAMES.get(code, "UNKNOWN")
    return JSONResponse({"error": {"code": code, "message": message, "status": status}}, status_code=code)


def _fault_response(endpoint: str, status: int | None, body: str | None) -> Response:
    code = status or 200
    if body is not None:
        media_type = "text/html" if body.lstrip().startswith("<") else "text/plain"
        return Response(content=body, status_code=code, media_type=media_type)
    if endpoint == GEMINI_ENDPOINT:
        return gemini_error_response(code, _GEMINI_FAULT_MESSAGES.get(code, f"Injected fault {code}."))
    if endpoint in CRM_ENDPOINTS:
        error = {"error": "INTERNAL_SERVER_ERROR", "error_description": f"Injected fault: HTTP {code}"}
        return JSONResponse(error, status_code=code)
    return wappi_error_response(code, f"Injected fault: HTTP {code}")


async def pass_through_faults(state: SandboxState, endpoint: str) -> None:
    """Count the call, wait the injected latency, then raise InjectedFault if this call must fail."""
    state.count_call(endpoint)
    fault = state.faults.get(endpoint)
    if fault is None:
        return
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    if state.should_fail(fault):
        raise InjectedFault(_fault_response(endpoint, fault.status, fault.body))


async def bad_answer_due(state: SandboxState, job: str) -> str | None:
    """The bad answer this Gemini call gets, if a fault for its job (or, failing that, any job) fires."""
    for key in (answer_fault_key(job), answer_fault_key(None)):
        fault = state.faults.get(key)
        if fault is None:
            continue
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if state.should_fail(fault):
            return fault.answer
    return None


def install_error_handlers(app: FastAPI) -> None:
    async def on_wappi_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, WappiError)
        return wappi_error_response(exc.status_code, exc.detail)

    async def on_gemini_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, GeminiError)
        return gemini_error_response(exc.code, exc.message)

    async def on_injected_fault(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, InjectedFault)
        return exc.response

    app.add_exception_handler(WappiError, on_wappi_error)
    app.add_exception_handler(GeminiError, on_gemini_error)
    app.add_exception_handler(InjectedFault, on_injected_fault)


def parse_json_object(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
