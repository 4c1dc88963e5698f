"""No usable answer from Gemini is not silence: a blocked, cut-off or off-schema answer is asked again a
few times (with less context after a cut-off), then the client gets the code's holding reply, recorded
with why. A blocked moderator leaves the contact unclassified, and nothing is sent."""

import pytest
from sqlalchemy import select

from models import Contact, Decision, Message
from services.ai_moderator import ModeratorVerdict
from services.ai_sales_agent import DRAFT_ATTEMPTS
from services.gemini_client import GeminiBlocked, GeminiTruncated
from services.message_consumer import Outcome
from services.replies import HOLDING_REPLY
from tests.conftest import ADMIN_KEY, handle, incoming
from tests.gemini_stub import blocked_answer, default_sales, gemini_answer, no_candidates, truncated

PHONE = "77016660001"
OFF_SCHEMA = {"answer": "Здравствуйте!", "stance": 42}


async def decisions(db) -> list[Decision]:
    async with db() as session:
        return list((await session.scalars(select(Decision).order_by(Decision.id))).all())


@pytest.mark.parametrize(
    ("bad_answer", "why"),
    [
        (lambda: blocked_answer("SAFETY"), "blocked: SAFETY"),
        (lambda: blocked_answer("RECITATION"), "blocked: RECITATION"),
        (no_candidates, "blocked: SAFETY"),
        (lambda: truncated(default_sales("")), "cut off at MAX_TOKENS"),
        (lambda: gemini_answer(OFF_SCHEMA), "off-schema"),
    ],
)
async def test_a_sales_answer_that_stays_unusable_gets_the_holding_reply(
    agent, db, gemini, queues, api, bad_answer, why
):
    gemini.sales = lambda prompt: bad_answer()

    outcome = await handle(incoming("Сколько стоит тариф Старт?", phone=PHONE, business="ТОО Б"), agent)

    assert outcome is Outcome.REPLIED
    [sent] = await queues.outgoing()
    assert sent["message_text"] == HOLDING_REPLY["ru"]
    assert len(gemini.prompts_of("sales")) == DRAFT_ATTEMPTS
    [decision] = await decisions(db)
    assert decision.kind == "holding" and decision.reason == f"sales agent gave no usable answer: {why}"
    stats = (await api.get("/stats", headers={"X-API-Key": ADMIN_KEY})).json()
    assert stats["decisions_today"]["holding"] == 1


async def test_after_a_cut_off_answer_the_next_try_is_shorter_and_its_answer_goes_out(
    agent, db, gemini, queues
):
    async with db.begin() as session:
        contact = Contact(phone_number=PHONE, is_client=True)
        session.add(contact)
        await session.flush()
        for n in range(12):
            session.add(
                Message(
                    contact_id=contact.id, phone_number=PHONE, message_text=f"реплика {n}", message_id=f"h{n}"
                )
            )
    answers = iter([truncated(default_sales("")), gemini_answer(default_sales(""))])
    gemini.sales = lambda prompt: next(answers)

    await handle(incoming("А что с интеграцией 1С?", phone=PHONE), agent)

    first, second = gemini.prompts_of("sales")
    assert len(second) < len(first)
    [sent] = await queues.outgoing()
    assert sent["message_text"] == default_sales("")["reply"]
    assert [d.kind for d in await decisions(db)] == ["replied"]


async def test_a_blocked_moderator_leaves_the_contact_unclassified_and_sends_nothing(
    agent, db, gemini, queues
):
    gemini.moderator = lambda prompt: blocked_answer("SAFETY")

    outcome = await handle(incoming("Здравствуйте", phone=PHONE), agent)

    assert outcome is Outcome.UNCLASSIFIED
    assert await queues.outgoing() == []
    async with db() as session:
        contact = await session.scalar(select(Contact).where(Contact.phone_number == PHONE))
    assert contact.is_client is None
    [decision] = await decisions(db)
    assert (
        decision.kind == "unclassified"
        and decision.reason == "moderator gave no usable answer: blocked: SAFETY"
    )
    assert len(gemini.prompts_of("moderator")) == 2  # asked twice, not in a loop

    gemini.moderator = lambda prompt: {"isClient": True, "confidence": 0.9, "reasoning": "asks about prices"}
    await handle(incoming("Сколько стоит тариф Старт?", phone=PHONE), agent)
    assert len(await queues.outgoing()) == 1


async def test_the_client_tells_the_kinds_of_unusable_answer_apart(gemini, llm):
    gemini.moderator = lambda prompt: no_candidates()
    with pytest.raises(GeminiBlocked, match="no answer"):
        await llm.generate_json("Название компании: x", ModeratorVerdict, purpose="moderator")
    gemini.moderator = lambda prompt: truncated({"isClient": True, "confidence": 0.5, "reasoning": "long"})
    with pytest.raises(GeminiTruncated):
        await llm.generate_json("Название компании: x", ModeratorVerdict, purpose="moderator")
