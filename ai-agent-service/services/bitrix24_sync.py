"""What each CRM event does in Bitrix24. A client becomes one lead, whatever happens: the lead's id is kept on
the contact (contacts.crm_lead_id) as soon as it is known, and before adding a lead the portal is asked for
one with the contact's phone, so a lead added just before a crash, or by a person, is found, not doubled.

- contact.classified (a client): the lead, found or added.
- call.booked: the lead (found or added), then a planned call on it at the booked time.
- call.cancelled: a comment on the lead's timeline saying which call is off (the planned call stays for the
  manager to close: the activity's id is not kept, and a comment is what a manager reads first).
- contact.opted_out: a comment on the lead's timeline; the lead itself is left as the managers keep it.
A cancellation or an opt-out of a contact with no lead in the portal needs nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loguru import logger
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Contact, CrmEvent
from service_kit.runtime import autocommit_session
from services.bitrix24_client import Bitrix24Client, NewLead, PlannedCall
from services.crm_events import CALL_BOOKED, CALL_CANCELLED, CONTACT_CLASSIFIED, CONTACT_OPTED_OUT

LEAD_SOURCE = "WHATSAPP"


async def deliver_to_bitrix24(
    event: CrmEvent, *, client: Bitrix24Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Does what the event means in the portal; raises Bitrix24Error when the portal refuses."""
    contact, data = event.payload["contact"], event.payload["data"]
    if event.event_type == CONTACT_CLASSIFIED:
        await ensure_lead(event, client=client, sessions=sessions)
    elif event.event_type == CALL_BOOKED:
        lead_id = await ensure_lead(event, client=client, sessions=sessions)
        await client.add_call(
            PlannedCall(
                lead_id=lead_id,
                subject=f"Звонок: {_who(contact)}",
                starts=datetime.fromisoformat(data["scheduled_at"]),
                ends=datetime.fromisoformat(data["ends_at"]),
                phone=contact["phone"],
                description=_call_description(data),
                origin_id=str(event.event_id),
            )
        )
    elif event.event_type in (CALL_CANCELLED, CONTACT_OPTED_OUT):
        lead_id = await _known_lead(event, client=client, sessions=sessions)
        if lead_id is not None:
            await client.comment_lead(lead_id, _comment(event.event_type, data))


async def ensure_lead(
    event: CrmEvent, *, client: Bitrix24Client, sessions: async_sessionmaker[AsyncSession]
) -> int:
    """The contact's lead: the one kept, else the one the portal has for the phone, else a new one."""
    lead_id = await _known_lead(event, client=client, sessions=sessions)
    if lead_id is not None:
        return lead_id
    lead_id = await client.add_lead(await _new_lead(event, sessions))
    logger.info("Bitrix24: lead {} added for contact {}", lead_id, event.contact_id)
    await _keep_lead_id(sessions, event.contact_id, lead_id)
    return lead_id


async def _known_lead(
    event: CrmEvent, *, client: Bitrix24Client, sessions: async_sessionmaker[AsyncSession]
) -> int | None:
    if event.contact_id is not None:
        async with autocommit_session(sessions) as session:
            kept = await session.scalar(select(Contact.crm_lead_id).where(Contact.id == event.contact_id))
        if kept is not None:
            return kept
    found = await client.find_leads_by_phone(event.payload["contact"]["phone"])
    if not found:
        return None
    await _keep_lead_id(sessions, event.contact_id, found[0])
    return found[0]


async def _keep_lead_id(
    sessions: async_sessionmaker[AsyncSession], contact_id: int | None, lead_id: int
) -> None:
    # Kept at once, in its own statement: a later step of this event failing must not forget the lead.
    if contact_id is None:
        return
    async with autocommit_session(sessions) as session:
        await session.execute(
            update(Contact)
            .where(Contact.id == contact_id, Contact.crm_lead_id.is_(None))
            .values(crm_lead_id=lead_id)
        )


async def _new_lead(event: CrmEvent, sessions: async_sessionmaker[AsyncSession]) -> NewLead:
    """The lead as the contact is now (the event's snapshot if the contact is gone)."""
    snapshot, data = event.payload["contact"], event.payload["data"]
    reasoning, confidence = data.get("reasoning"), data.get("confidence")
    if event.contact_id is not None and reasoning is None:
        async with autocommit_session(sessions) as session:
            row = await session.get(Contact, event.contact_id)
        if row is not None:
            reasoning, confidence = row.classification_reasoning, row.classification_confidence
    comments = "Клиент из WhatsApp, найден AI-ботом."
    if reasoning:
        sure = f" (уверенность {confidence:.2f})" if confidence is not None else ""
        comments += f"\nПочему клиент{sure}: {reasoning}"
    return NewLead(
        title=f"WhatsApp: {_who(snapshot)}",
        name=snapshot.get("name") or snapshot.get("full_name"),
        phone=snapshot["phone"],
        comments=comments,
        company=snapshot.get("business_name"),
        source_id=LEAD_SOURCE,
    )


def _who(contact: dict[str, Any]) -> str:
    name = contact.get("full_name") or contact.get("name") or contact.get("business_name")
    return f"{name} ({contact['phone']})" if name else contact["phone"]


def _call_description(data: dict[str, Any]) -> str:
    lines = ["Клиент записался на звонок в WhatsApp (AI-бот)."]
    if data.get("manager"):
        lines.append(f"Менеджер: {data['manager']['name']} ({data['manager']['phone']})")
    if data.get("notes"):
        lines.append(str(data["notes"]))
    return "\n".join(lines)


def _comment(event_type: str, data: dict[str, Any]) -> str:
    if event_type == CALL_CANCELLED:
        when = datetime.fromisoformat(data["scheduled_at"]).strftime("%d.%m.%Y %H:%M")
        reason = f": {data['reason']}" if data.get("reason") else ""
        return f"Звонок {when} ({data['timezone']}) отменён{reason}"
    return "Клиент попросил больше не писать ему в WhatsApp; бот ему больше не пишет."
