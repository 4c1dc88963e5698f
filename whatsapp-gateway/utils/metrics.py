"""The gateway's Prometheus metrics (the spec's monitoring list for Project 1), beside the queue gauge."""

from service_kit.metrics import ServiceMetrics

WAPPI_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


class GatewayMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("gateway")
        self.messages_received = self.counter(
            "messages_received", "Customer messages forwarded to the agent", ["message_type"]
        )
        self.operator_messages = self.counter(
            "operator_messages",
            "Messages typed on the business phone in a client's chat, forwarded to the agent",
            ["message_type"],
        )
        self.messages_skipped = self.counter(
            "messages_skipped",
            "Messages never forwarded: Status, channels, groups, hidden or whitelisted numbers, reactions",
            ["reason"],
        )
        self.messages_sent = self.counter("messages_sent", "Messages sent through Wappi", ["kind"])
        self.sends_waiting = self.gauge(
            "sends_waiting", "Sends waiting for their turn under MAX_SENDS_PER_MINUTE"
        )
        self.oldest_send_wait = self.gauge(
            "oldest_send_wait_seconds", "How long the send waiting longest for its turn has waited"
        )
        self.voice_transcribed = self.counter(
            "voice_transcribed", "Voice notes forwarded as text", ["outcome"]
        )
        self.webhook_pushes = self.counter(
            "webhook_pushes",
            "Wappi webhook pushes: stored (held messages), ignored (ticks only), malformed, refused (secret)",
            ["outcome"],
        )
        self.wappi_latency = self.histogram(
            "wappi_request_seconds", "Wappi API latency per endpoint", ["endpoint"], WAPPI_LATENCY_BUCKETS
        )
        self.wappi_errors = self.counter(
            "wappi_errors", "Failed Wappi calls per endpoint", ["endpoint", "kind"]
        )
