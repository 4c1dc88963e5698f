"""The three prompt files, each checked for its placeholders when loaded (utils/prompt_loader.py re-reads a
file when it changes). Each speaks in the business's name: {our_business_name} is BUSINESS_NAME.

Not {business_name}: in the spec's moderator prompt that is the contact's own company."""

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


BUSINESS_PLACEHOLDER = "our_business_name"


def load_prompts(folder: Path, business_name: str) -> Prompts:
    """Raises PromptError for a file that is missing or lacks a placeholder."""
    ours = {BUSINESS_PLACEHOLDER: business_name}
    return Prompts(
        moderator=PromptTemplate(folder / "moderator_prompt.txt", MODERATOR_PLACEHOLDERS, ours),
        sales_agent=PromptTemplate(folder / "sales_agent_prompt.txt", SALES_PLACEHOLDERS, ours),
        follow_up=PromptTemplate(folder / "follow_up_prompt.txt", FOLLOW_UP_PLACEHOLDERS, ours),
    )
