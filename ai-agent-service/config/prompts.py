"""The three prompt files, each checked for its placeholders when loaded (utils/prompt_loader.py re-reads a
file when it changes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.ai_moderator import MODERATOR_PLACEHOLDERS
from services.ai_sales_agent import SALES_PLACEHOLDERS
from services.follow_up_scheduler import FOLLOW_UP_PLACEHOLDERS
from utils.prompt_loader import PromptTemplate


@dataclass(frozen=True)
class Prompts:
    moderator: PromptTemplate
    sales_agent: PromptTemplate
    follow_up: PromptTemplate


def load_prompts(folder: Path) -> Prompts:
    """Raises PromptError for a file that is missing or lacks a placeholder."""
    return Prompts(
        moderator=PromptTemplate(folder / "moderator_prompt.txt", MODERATOR_PLACEHOLDERS),
        sales_agent=PromptTemplate(folder / "sales_agent_prompt.txt", SALES_PLACEHOLDERS),
        follow_up=PromptTemplate(folder / "follow_up_prompt.txt", FOLLOW_UP_PLACEHOLDERS),
    )
