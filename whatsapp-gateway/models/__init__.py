from models.base import Base
from models.message_log import MessageLog
from models.poll_state import ChatCursor, PollState
from models.send_rate import SendRate
from models.webhook_push import WebhookPush
from models.whitelist import Whitelist

__all__ = ["Base", "ChatCursor", "MessageLog", "PollState", "SendRate", "WebhookPush", "Whitelist"]
