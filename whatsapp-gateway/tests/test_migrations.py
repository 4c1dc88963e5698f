"""The migration builds the spec's schema on a real PostgreSQL."""

import asyncio
import uuid

import asyncpg
from alembic import command
from alembic.config import Config

from tests.conftest import PG_ADMIN_DSN, PG_HOST, SERVICE_DIR


async def _connect(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))


async def test_migration_creates_the_spec_tables_and_indexes(database_url):
    conn = await _connect(database_url)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert {"message_logs", "whitelist", "poll_state", "chat_cursors", "alembic_version"} <= tables
        columns = {
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name='message_logs'"
            )
        }
        spec = {
            "id",
            "message_id",
            "phone_number",
            "direction",
            "message_text",
            "is_voice",
            "wappi_status",
            "queue_status",
            "created_at",
            "processed_at",
        }
        assert spec <= columns
        assert {
            "chat_id",
            "message_type",
            "payload",
            "wappi_message_id",
            "attempts",
            "error",
            "outgoing_id",
        } <= columns
        indexes = {
            r["indexname"]: r["indexdef"]
            for r in await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename='message_logs'"
            )
        }
        assert "(phone_number)" in indexes["idx_message_logs_phone"]
        assert "(created_at)" in indexes["idx_message_logs_created"]
        assert any("UNIQUE" in d and "(message_id)" in d for d in indexes.values())
        assert any("UNIQUE" in d and "(outgoing_id)" in d for d in indexes.values())
        whitelist_unique = await conn.fetch("SELECT indexdef FROM pg_indexes WHERE tablename='whitelist'")
        assert any("UNIQUE" in r["indexdef"] and "(phone_number)" in r["indexdef"] for r in whitelist_unique)
    finally:
        await conn.close()


async def test_whitelist_is_seeded_with_the_three_personal_numbers(database_url):
    conn = await _connect(database_url)
    try:
        numbers = {r["phone_number"] for r in await conn.fetch("SELECT phone_number FROM whitelist")}
    finally:
        await conn.close()
    assert numbers == {"77752837306", "77018855588", "77088098009"}


async def test_every_timestamp_column_is_timestamptz(database_url):
    conn = await _connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema='public' AND data_type LIKE 'timestamp%'"
        )
    finally:
        await conn.close()
    assert rows, "no timestamp columns found"
    assert {r["data_type"] for r in rows} == {"timestamp with time zone"}
    assert ("message_logs", "created_at") in {(r["table_name"], r["column_name"]) for r in rows}


async def test_an_existing_whitelist_is_rewritten_in_the_normal_form_one_entry_per_number():
    name = f"whatsapp_gateway_migration_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{name}"
    config = Config(str(SERVICE_DIR / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    try:
        await asyncio.to_thread(command.upgrade, config, "0001_initial")
        conn = await _connect(url)
        # As people typed them before the rule, one number twice.
        await conn.executemany(
            "INSERT INTO whitelist (phone_number, note) VALUES ($1, $2)",
            [("+7 701 123 45 67", "typed"), ("8 (701) 123-45-67", "again"), ("77015550001@c.us", "copied")],
        )
        await conn.close()
        await asyncio.to_thread(command.upgrade, config, "head")
        conn = await _connect(url)
        rows = await conn.fetch("SELECT phone_number, note FROM whitelist ORDER BY phone_number")
        await conn.close()
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    assert [(r["phone_number"], r["note"]) for r in rows] == [
        ("77011234567", "typed"),
        ("77015550001", "copied"),
        ("77018855588", "Личный номер 2"),
        ("77088098009", "Личный номер 3"),
        ("77752837306", "Личный номер 1"),
    ]
