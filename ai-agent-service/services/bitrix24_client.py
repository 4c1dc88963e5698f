"""The door to a Bitrix24 portal through its inbound webhook (BITRIX24_WEBHOOK_URL,
`https://<portal>.bitrix24.kz/rest/<user id>/<secret>/`): leads found by phone or added, a call activity on a
lead, a comment on a lead's timeline. Nothing else speaks Bitrix24's REST.

A portal answers `{"result": ...}` or `{"error": CODE, "error_description": ...}` and lets a webhook make
about two requests a second (QUERY_LIMIT_EXCEEDED beyond). The client keeps to that pace itself; when the
portal says the limit is reached anyway (others may use the webhook too) it slows every caller down for a
while and asks again in place; of any other failure it says whether waiting can fix it
(Bitrix24Error.transient). The URL holds the webhook's secret: it is never put into an error or a log line.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

TIMEOUT_S = 15.0
# A portal's webhook may make about 2 requests per second.
MIN_INTERVAL_S = 0.5
# After QUERY_LIMIT_EXCEEDED: nobody asks for a second, then at most 2 a second for half a minute, and the
# refused request is asked again in place (so an event's lead.add is not lost to another event's lookup).
LIMIT_PAUSE_S = 1.0
LIMITED_FOR_S = 30.0
LIMIT_TRIES = 3
# Error codes that go away by themselves: the request limit, a portal overloaded or restarting.
TRANSIENT_CODES = frozenset({"QUERY_LIMIT_EXCEEDED", "OVERLOAD_LIMIT", "INTERNAL_SERVER_ERROR"})
OWNER_LEAD = 1  # crm.enum.ownertype: a lead
ACTIVITY_CALL = 2  # crm.enum.activitytype: a call
OUTGOING = 2  # crm.enum.activitydirection: the manager calls the client


class Bitrix24Error(Exception):
    def __init__(self, method: str, code: str, description: str, *, transient: bool) -> None:
        super().__init__(f"Bitrix24 {method}: {code or 'error'}: {description}")
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class NewLead:
    title: str
    name: str | None
    phone: str  # +7701...
    comments: str
    company: str | None
    source_id: str


@dataclass(frozen=True)
class PlannedCall:
    lead_id: int
    subject: str
    starts: datetime  # aware: sent as ISO 8601 with its offset
    ends: datetime
    phone: str  # +7701...
    description: str
    origin_id: str  # our event id, so the activity can be traced back


class Bitrix24Client:
    def __init__(
        self, webhook_url: str, *, timeout_s: float = TIMEOUT_S, min_interval_s: float = MIN_INTERVAL_S
    ) -> None:
        self._base = webhook_url.rstrip("/") + "/"
        self._http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._min_interval_s = min_interval_s
        self._pace = asyncio.Lock()
        self._next_at = 0.0
        self._limited_until = 0.0

    async def find_leads_by_phone(self, phone: str) -> list[int]:
        """Ids of the leads holding this phone number, oldest first."""
        result = await self.call("crm.duplicate.findbycomm", {"type": "PHONE", "values": [phone]})
        # Bitrix24 answers an empty list when nothing matches, else {"LEAD": [...], "CONTACT": [...]}.
        leads = result.get("LEAD", []) if isinstance(result, dict) else []
        return sorted(int(lead_id) for lead_id in leads)

    async def add_lead(self, lead: NewLead) -> int:
        fields = {
            "TITLE": lead.title,
            "NAME": lead.name,
            "COMPANY_TITLE": lead.company,
            "PHONE": [{"VALUE": lead.phone, "VALUE_TYPE": "MOBILE"}],
            "COMMENTS": lead.comments,
            "SOURCE_ID": lead.source_id,
        }
        result = await self.call(
            "crm.lead.add", {"fields": {k: v for k, v in fields.items() if v is not None}}
        )
        return int(result)

    async def add_call(self, call: PlannedCall) -> int:
        """A planned outgoing call on the lead; the portal's default responsible user takes it."""
        fields = {
            "OWNER_TYPE_ID": OWNER_LEAD,
            "OWNER_ID": call.lead_id,
            "TYPE_ID": ACTIVITY_CALL,
            "DIRECTION": OUTGOING,
            "SUBJECT": call.subject,
            "START_TIME": call.starts.isoformat(),
            "END_TIME": call.ends.isoformat(),
            "COMMUNICATIONS": [
                {
                    "VALUE": call.phone,
                    "TYPE": "PHONE",
                    "ENTITY_TYPE_ID": OWNER_LEAD,
                    "ENTITY_ID": call.lead_id,
                }
            ],
            "DESCRIPTION": call.description,
            "ORIGIN_ID": call.origin_id,
        }
        return int(await self.call("crm.activity.add", {"fields": fields}))

    async def comment_lead(self, lead_id: int, text: str) -> int:
        """A comment on the lead's timeline, where the manager sees it beside the lead's calls."""
        fields = {"ENTITY_ID": lead_id, "ENTITY_TYPE": "lead", "COMMENT": text}
        return int(await self.call("crm.timeline.comment.add", {"fields": fields}))

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """One REST method; its `result`, or Bitrix24Error saying whether waiting can fix the failure."""
        for _ in range(LIMIT_TRIES - 1):
            try:
                return await self._call_once(method, params)
            except Bitrix24Error as exc:
                if exc.code != "QUERY_LIMIT_EXCEEDED":
                    raise
                now = time.monotonic()
                self._limited_until = now + LIMITED_FOR_S
                self._next_at = max(self._next_at, now + LIMIT_PAUSE_S)
        return await self._call_once(method, params)

    async def _call_once(self, method: str, params: dict[str, Any]) -> Any:
        await self._wait_turn()
        try:
            response = await self._http.post(f"{self._base}{method}.json", json=params)
        except httpx.HTTPError as exc:
            raise Bitrix24Error(method, "UNREACHABLE", type(exc).__name__, transient=True) from exc
        transient_status = response.status_code in (408, 429) or response.status_code >= 500
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            description = f"HTTP {response.status_code}, not a JSON object"
            raise Bitrix24Error(method, "UNEXPECTED_ANSWER", description, transient=transient_status)
        if "error" in answer:
            code = str(answer.get("error") or "")
            description = str(answer.get("error_description") or "")
            raise Bitrix24Error(
                method, code, description, transient=code in TRANSIENT_CODES or transient_status
            )
        if "result" not in answer:
            raise Bitrix24Error(method, "UNEXPECTED_ANSWER", "no result", transient=transient_status)
        return answer["result"]

    async def _wait_turn(self) -> None:
        async with self._pace:
            now = time.monotonic()
            if self._next_at > now:
                await asyncio.sleep(self._next_at - now)
            interval = max(self._min_interval_s, MIN_INTERVAL_S if now < self._limited_until else 0.0)
            self._next_at = max(now, self._next_at) + interval

    async def aclose(self) -> None:
        await self._http.aclose()
