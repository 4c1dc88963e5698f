"""Counts what a run of customers received and prints the suite's table."""

from collections import Counter
from dataclasses import dataclass


@dataclass
class Row:
    scenario: str
    sent: int
    expected: int
    received: int
    duplicates: int
    lost: int
    in_dlq: int


ROWS: list[Row] = []


def tally(scenario: str, written: dict[str, str], sent: list[dict], in_dlq: int) -> Row:
    """written: customer phone -> the id of the message they wrote; sent: what the bot sent (sandbox)."""
    replies = Counter(m["reply_to"] for m in sent if m["recipient"] in written)
    received = sum(1 for message_id in written.values() if replies[message_id] >= 1)
    duplicates = sum(n - 1 for n in replies.values() if n > 1)
    row = Row(scenario, len(written), len(written), received, duplicates, len(written) - received, in_dlq)
    ROWS.append(row)
    return row


def table() -> str:
    header = (
        "scenario",
        "messages sent",
        "replies expected",
        "replies received",
        "duplicates",
        "lost",
        "in DLQ",
    )
    lines = [header] + [
        (r.scenario, r.sent, r.expected, r.received, r.duplicates, r.lost, r.in_dlq) for r in ROWS
    ]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)) for line in lines)
