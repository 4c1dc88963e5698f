"""What whatsapp-gateway and ai-agent-service both do, written once.

- queues: the queues' one description (contracts/queues.json), their contracts and topology
- errors: how a handler says a failure is worth another try
- publisher: persistent JSON messages, each confirmed by the broker within a timeout
- consumer: decode → validate → typed body → handle → retry or dead-letter with the reason → ack
- dead_letters: putting parked messages back with a fresh retry budget
- outbox: publishing stored rows after their commit, keeping what the broker confirmed
- api: the admin-key dependency, the key-protected OpenAPI pages, the per-client rate limit
- app: the FastAPI app of a service, its runtime kept on app.state for the life of the app
- liveness: whether the background workers still run, for /health
- logs: the spec's loguru setup with secrets masked
- settings: the settings both services share and their checks
- clock: the service's clock, moved by CLOCK_OFFSET_SECONDS

Each service keeps its own models, databases, handlers and settings; at runtime the two share nothing but
the broker and the contracts.
"""
