"""A fake Bitrix24 portal's CRM data, and the request limit of its inbound webhook (served by crm.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Bitrix24 lets a webhook burst up to 50 requests, then 2 per second ("leaky bucket").
BURST = 50
LEAK_PER_SECOND = 2.0


@dataclass
class Bitrix24:
    """A portal's CRM (leads, activities, timeline comments) and how full its webhook's request bucket is."""

    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    activities: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    bucket: float = 0.0
    bucket_at: float = field(default_factory=time.monotonic)
    next_id: int = 1

    def admit(self) -> bool:
        """One more request, if the bucket has room."""
        now = time.monotonic()
        self.bucket = max(0.0, self.bucket - (now - self.bucket_at) * LEAK_PER_SECOND)
        self.bucket_at = now
        if self.bucket + 1 > BURST:
            return False
        self.bucket += 1
        return True

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1
