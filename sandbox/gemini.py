"""Fake Gemini: the generateContent REST endpoint, its request parsing, and which answer a request gets."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from fastapi import APIRouter, Request

from sandbox.deps import StateDep
from sandbox.fake_llm import LlmRequest, UnreadableAudio, answer, client_part, job_of
from sandbox.faults import (
    GEMINI_ENDPOINT,
    GeminiError,
    bad_answer_due,
    parse_json_object,
    pass_through_faults,
)
from sandbox.gemini_answers import answer_body, bad_answer_body, prompt_tokens
from sandbox.state import SandboxState

router = APIRouter()

API_VERSIONS = ("v1", "v1beta")


def _get(obj: dict[str, Any], camel: str) -> Any:
    """A field by its REST (camelCase) name or the snake_case name the Python SDK may send."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower())


def decode_base64(data: str) -> bytes:
    """Inline data arrives URL-safe (google-genai) or standard (REST docs); accept both, padded or not."""
    cleaned = "".join(data.split()).replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise GeminiError(400, "Invalid value at 'contents.parts.inline_data.data': invalid base64") from None


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, dict):
        return []
    parts = _get(content, "parts") or []
    return [p for p in parts if isinstance(p, dict)]


def parse_request(body: dict[str, Any]) -> tuple[LlmRequest, int]:
    """The fake model's view of a request, plus the bytes of inline data (billed as prompt tokens)."""
    contents = _get(body, "contents")
    if isinstance(contents, dict | str):
        contents = [contents]
    if not contents:
        raise GeminiError(400, "* GenerateContentRequest.contents: contents is not specified")
    req = LlmRequest()
    inline_bytes = 0
    for part in _parts(_get(body, "systemInstruction")):
        if isinstance(part.get("text"), str):
            req.system_texts.append(part["text"])
    for content in contents:
        for part in _parts(content):
            if isinstance(part.get("text"), str):
                req.content_texts.append(part["text"])
            inline = _get(part, "inlineData")
            if isinstance(inline, dict):
                data = decode_base64(str(_get(inline, "data") or ""))
                inline_bytes += len(data)
                if str(_get(inline, "mimeType") or "").startswith("audio/"):
                    req.audio.append(data)
    config = _get(body, "generationConfig") or {}
    schema = _get(config, "responseSchema") or _get(config, "responseJsonSchema")
    req.schema = schema if isinstance(schema, dict) else None
    req.wants_json = str(_get(config, "responseMimeType") or "").startswith("application/json")
    return req, inline_bytes


def _check_caller(request: Request, state: SandboxState, version: str, model: str) -> None:
    key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
    if not key:
        raise GeminiError(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    if state.gemini_api_key is not None and key != state.gemini_api_key:
        raise GeminiError(400, "API key not valid. Please pass a valid API key.")
    if version not in API_VERSIONS or not model.startswith("gemini") or "missing" in model:
        raise GeminiError(
            404,
            f"models/{model} is not found for API version {version}, or is not supported for "
            "generateContent. Call ListModels to see the list of available models "
            "and their supported methods.",
        )


@router.post("/{version}/models/{model}:generateContent")
async def generate_content(version: str, model: str, request: Request, state: StateDep) -> dict[str, Any]:
    started = state.gemini_started()
    try:
        await pass_through_faults(state, GEMINI_ENDPOINT)
        _check_caller(request, state, version, model)
        body = parse_json_object(await request.body())
        if body is None:
            raise GeminiError(400, "Invalid JSON payload received.")
        req, inline_bytes = parse_request(body)
        req.now = state.clock()
        try:
            rules_text = answer(req)
        except UnreadableAudio as exc:
            raise GeminiError(400, f"{exc}.") from None
        job = job_of(req)
        state.record_prompt(job, req.prompt)
        bad_answer = await bad_answer_due(state, job)
        text = _scripted_text(state, req, job, use=bad_answer is None) or rules_text
    finally:
        state.gemini_finished(started)
    prompt_chars = sum(len(t) for t in (*req.system_texts, *req.content_texts))
    tokens = prompt_tokens(prompt_chars, inline_bytes)
    if bad_answer is not None:
        return bad_answer_body(bad_answer, text, tokens, model)
    return answer_body(text, tokens, model)


def _scripted_text(state: SandboxState, req: LlmRequest, job: str, *, use: bool) -> str | None:
    """The answer of the script this request matches, if any.

    A call that gets a bad answer does not use the script up, so the client's retry still meets it.
    """
    script = state.find_script(job, client_part(req, job), use=use)
    return json.dumps(script.answer, ensure_ascii=False) if script else None
