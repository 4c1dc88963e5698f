"""Prometheus metrics of the gateway, one registry per process (built in app.py, passed to who counts)."""

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class GatewayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages_received = Counter(
            "gateway_messages_received",
            "Customer messages forwarded to the agent",
            ["message_type"],
            registry=r,
        )
        self.messages_skipped = Counter(
            "gateway_messages_skipped",
            "Messages never forwarded: Status, channels, groups, hidden or whitelisted numbers, reactions",
            ["reason"],
            registry=r,
        )
        self.messages_sent = Counter(
            "gateway_messages_sent", "Messages sent through Wappi", ["kind"], registry=r
        )
        self.voice_transcribed = Counter(
            "gateway_voice_transcribed", "Voice notes forwarded as text", ["outcome"], registry=r
        )
        self.queue_size = Gauge("gateway_queue_size", "Ready messages per queue", ["queue"], registry=r)
        self.wappi_latency = Histogram(
            "gateway_wappi_request_seconds",
            "Wappi API latency per endpoint",
            ["endpoint"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.wappi_errors = Counter(
            "gateway_wappi_errors", "Failed Wappi calls per endpoint", ["endpoint", "kind"], registry=r
        )
