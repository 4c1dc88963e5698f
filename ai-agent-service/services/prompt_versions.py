"""Prompts edited in the console, kept in PostgreSQL (containers are ephemeral, replicas many): each save is a
new version, the newest per prompt is the live one (else the file in PROMPTS_PATH), and restoring an older
version (or the file) saves it again as the newest, so nothing of the history is lost. Every replica picks
the live versions up within PROMPT_REFRESH_S (run_prompt_refresh)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime

from loguru import logger
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.prompts import Prompts
from models import PromptVersion
from utils.prompt_loader import PromptError, PromptTemplate

PROMPT_REFRESH_S = 5.0
PROMPT_NAMES = tuple(field.name for field in fields(Prompts))  # sales_agent, moderator, follow_up


class PlaceholdersMissing(Exception):
    """A version that lacks placeholders the prompt must have; `names` without braces."""

    def __init__(self, names: set[str]):
        super().__init__(", ".join(sorted(names)))
        self.names = sorted(names)


def template_of(prompts: Prompts, name: str) -> PromptTemplate:
    if name not in PROMPT_NAMES:
        raise KeyError(name)
    return getattr(prompts, name)


async def save_version(
    session: AsyncSession, prompts: Prompts, name: str, text: str, now: datetime, note: str | None = None
) -> PromptVersion:
    """Stores `text` as the newest version of prompt `name` (live once committed and applied:
    apply_live_versions); raises PlaceholdersMissing, storing nothing, if it lacks a placeholder."""
    missing = template_of(prompts, name).missing_from(text)
    if missing:
        raise PlaceholdersMissing(missing)
    version = PromptVersion(prompt=name, text=text, note=note, created_at=now)
    session.add(version)
    await session.flush()
    return version


async def versions_of(session: AsyncSession, name: str) -> list[PromptVersion]:
    """Every saved version of prompt `name`, newest (the live one) first."""
    query = select(PromptVersion).where(PromptVersion.prompt == name).order_by(PromptVersion.id.desc())
    return list((await session.scalars(query)).all())


async def apply_live_versions(sessions: async_sessionmaker[AsyncSession], prompts: Prompts) -> None:
    """Makes each prompt's newest saved version live (a prompt never edited keeps its file)."""
    newest = select(func.max(PromptVersion.id)).group_by(PromptVersion.prompt).scalar_subquery()
    async with sessions() as session:
        rows = (await session.scalars(select(PromptVersion).where(PromptVersion.id.in_(newest)))).all()
    live = {row.prompt: row.text for row in rows}
    for name in PROMPT_NAMES:
        try:
            template_of(prompts, name).use_edited(live.get(name))
        except PromptError as exc:  # only a version written past save_version could lack a placeholder
            logger.error("{}; keeping the prompt as it was", exc)


async def run_prompt_refresh(
    sessions: async_sessionmaker[AsyncSession],
    prompts: Prompts,
    *,
    interval: float = PROMPT_REFRESH_S,
    heartbeat: Callable[[], None] = lambda: None,
) -> None:
    while True:
        await refresh_live_versions(sessions, prompts)
        heartbeat()
        await asyncio.sleep(interval)


async def refresh_live_versions(sessions: async_sessionmaker[AsyncSession], prompts: Prompts) -> None:
    """apply_live_versions, unless the database is away: then the prompts stay as they are for now."""
    try:
        await apply_live_versions(sessions, prompts)
    except Exception as exc:
        logger.warning("Prompt versions could not be read: {}", exc)
