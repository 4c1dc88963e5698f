"""The migrations build the spec's schema; the queue topology can be declared again and again."""

from sqlalchemy import text

from service_kit.queues import declare_topology

SPEC_INDEXES = {
    "idx_contacts_is_client": "contacts",
    "idx_contacts_phone": "contacts",
    "idx_messages_contact_id": "messages",
    "idx_messages_timestamp": "messages",
    "idx_follow_ups_next_touch": "follow_ups",
    "idx_scheduled_calls_time": "scheduled_calls",
}


async def test_migration_creates_the_spec_tables_and_columns(engine):
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public'"
                )
            )
        ).all()
    columns = {(table, column): kind for table, column, kind in rows}
    spec = {
        "contacts": [
            "id",
            "phone_number",
            "name",
            "full_name",
            "business_name",
            "is_client",
            "classification_confidence",
            "classification_reasoning",
            "last_message_at",
            "created_at",
            "updated_at",
        ],
        "messages": [
            "id",
            "contact_id",
            "phone_number",
            "message_id",
            "message_text",
            "is_from_bot",
            "is_voice",
            "voice_transcription",
            "timestamp",
            "message_type",
            "sent_by",
            "outgoing_id",
            "answered_at",
            "published_at",
            "stance",
        ],
        "follow_ups": [
            "id",
            "contact_id",
            "touch_number",
            "next_touch_at",
            "last_touch_at",
            "is_completed",
            "stop_reason",
            "created_at",
            "reason",
            "silent_since",
            "stopped_at",
            "claimed_until",
        ],
        "scheduled_calls": ["id", "contact_id", "scheduled_at", "timezone", "status", "notes", "created_at"],
        "llm_usage": ["id", "purpose", "model", "prompt_tokens", "output_tokens", "created_at"],
    }
    for table, names in spec.items():
        for name in names:
            assert (table, name) in columns, f"{table}.{name} missing"
    timestamps = [
        kind for (table, name), kind in columns.items() if name.endswith("_at") or name == "timestamp"
    ]
    assert set(timestamps) == {"timestamp with time zone"}


async def test_migration_creates_the_spec_indexes_and_the_slot_guard(engine):
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT indexname, tablename, indexdef FROM pg_indexes"))).all()
    indexes = {name: (table, definition) for name, table, definition in rows}
    for name, table in SPEC_INDEXES.items():
        assert indexes[name][0] == table
    assert "WHERE (is_completed = false)" in indexes["idx_follow_ups_next_touch"][1]
    assert "DESC" in indexes["idx_messages_timestamp"][1]
    slot_guard = indexes["uq_scheduled_calls_manager_slot"][1]  # one call per manager and slot
    assert slot_guard.startswith("CREATE UNIQUE INDEX") and "'scheduled'" in slot_guard
    assert "manager_phone" in slot_guard
    assert indexes["messages_outgoing_id_key"][1].startswith("CREATE UNIQUE INDEX")
    assert indexes["messages_message_id_key"][1].startswith("CREATE UNIQUE INDEX")


async def test_declaring_the_queues_twice_works(broker):
    channel = await broker.connection.channel()
    await declare_topology(channel, broker.queues.by_contract.values())
    await declare_topology(channel, broker.queues.by_contract.values())
    for name in broker.queues.names():
        await channel.declare_queue(name, passive=True)
    assert not channel.is_closed
    await channel.close()
