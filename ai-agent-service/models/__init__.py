from models.base import Base
from models.console_sign_in import ConsoleSignInFailures
from models.contact import Contact
from models.crm_event import CrmEvent
from models.decision import Decision
from models.follow_up import FollowUp
from models.llm_usage import LlmUsage
from models.message import Message
from models.notification import Notification
from models.prompt_version import PromptVersion
from models.scheduled_call import ScheduledCall

__all__ = [
    "Base",
    "ConsoleSignInFailures",
    "Contact",
    "CrmEvent",
    "Decision",
    "FollowUp",
    "LlmUsage",
    "Message",
    "Notification",
    "PromptVersion",
    "ScheduledCall",
]
