"""What app.py builds once at start-up, typed; the FastAPI lifespan keeps it on app.state.runtime and the
routes reach it through api/deps.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from config.prompts import Prompts
from config.settings import Settings
from console.auth import ConsoleAuth
from service_kit.consumer import Consumer
from service_kit.runtime import ServiceRuntime
from services.ai_sales_agent import KnowledgeSearch
from services.crm_delivery import CrmDeps
from services.follow_up_scheduler import FollowUpDeps
from services.gemini_client import GeminiClient
from services.incoming_messages import IncomingMessage
from services.message_consumer import AgentDeps
from services.reminders import CalendarDeps
from utils.metrics import AgentMetrics


@dataclass
class Runtime(ServiceRuntime):
    """The shared infrastructure and the agent's own clients and workers."""

    settings: Settings
    metrics: AgentMetrics
    llm: GeminiClient
    knowledge: KnowledgeSearch
    prompts: Prompts
    agent: AgentDeps
    follow_ups: FollowUpDeps
    calendar: CalendarDeps
    consumer: Consumer[IncomingMessage]
    crm: CrmDeps | None  # the CRM delivery, when CRM_WEBHOOK_URL or BITRIX24_WEBHOOK_URL is set
    console: ConsoleAuth  # the operator console's sign-in and sessions
    workers: dict[str, asyncio.Task] = field(default_factory=dict)  # the background loops, by name
