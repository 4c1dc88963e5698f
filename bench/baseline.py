"""The raw baseline: one tight asyncio script doing, per customer message, the broker, database and HTTP
operations the pipeline needs, with none of the services' code around them (no ORM, no SDK, no contract
checks, no retries, no logging). Run by bench/baseline_run.py as `python -m bench.baseline ...`; the
customer message ids arrive on stdin, one "message_id chat_id phone" line each, as they are injected; it
prints "ready" once connected and "done" when every message got its reply.

Per message, like the pipeline:
  gateway   GET messages/get; INSERT message_logs (pending); in a transaction SELECT .. FOR UPDATE,
            publish to incoming (confirmed), UPDATE published; UPSERT chat_cursors
  agent     consume; UPSERT contact + INSERT message; in a transaction advisory lock, history SELECT,
            fake-Gemini moderator call, INSERT llm_usage, UPDATE contact, unanswered + history SELECTs,
            fake-Gemini sales call, INSERT llm_usage, INSERT reply, UPDATE answered; publish to outgoing
            (confirmed); UPDATE published_at; ack
  sender    consume; whitelist SELECT; INSERT message_logs (sending); in a transaction SELECT .. FOR UPDATE,
            reply-to chat SELECT, POST mark/read, POST reply, UPDATE sent; ack
The two fake-Gemini calls are in, as raw HTTP posts of the real prompt texts: the fake model's work is
part of every reply and runs on the same cores, so leaving it out would charge it to the services.
"""

import argparse
import asyncio
import json
import sys
import zlib
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import httpx

from bench import ROOT
from system import RABBITMQ_URL

PREFETCH = 32  # the agent's own prefetch; the same for the sender here, so it never waits on the broker
RECEIVERS = 32  # messages the "gateway" part works on at once
HTTP_CONNECTIONS = 6
WAPPI = {"headers": {"Authorization": "bench-token"}, "params": {"profile_id": "bench"}}
QUEUE_ARGS = {"incoming": (86_400_000, 10_000), "outgoing": (3_600_000, 5_000)}
PROMPTS = ROOT / "ai-agent-service" / "prompts"
# About what the project's retrieval puts into a sales prompt: four passages of up to 800 characters.
TERMS = (
    "Интеграция с Kaspi и 1С входит в тариф, перенос данных из Excel бесплатно. Оплата по счёту, договор, "
    "счёт-фактура и акт через ИС ЭСФ ежемесячно. Пробный период 14 дней без оплаты, обучение сотрудников "
    "в подарок. Дополнительный пользователь подключается к любому тарифу, дополнительный склад тоже. "
    "Поддержка в чате, в WhatsApp и по телефону по будням с 9:00 до 19:00 по времени Астаны, критичные сбои "
    "устраняются круглосуточно. При оплате за год действует скидка, условия уточняет менеджер."
)
KNOWLEDGE = "\n\n".join(
    f"[pricing.pdf, стр. 1]\nТариф {name}: {price} ₸ в месяц, {users} пользователей, {stores} склада. {TERMS}"
    for name, price, users, stores in (
        ("Старт", "9 900", 3, 1),
        ("Бизнес", "24 900", 10, 3),
        ("Про", "49 900", 30, 10),
        ("Сеть", "99 900", 100, 50),
    )
)
MODERATOR_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "isClient": {"type": "BOOLEAN"},
        "confidence": {"type": "NUMBER"},
        "reasoning": {"type": "STRING"},
    },
}
SALES_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "reply": {"type": "STRING"},
        "stance": {"type": "STRING"},
        "agreed_to_call": {"type": "BOOLEAN"},
        "proposed_call_time": {"type": "STRING"},
        "confirmed_call_time": {"type": "BOOLEAN"},
    },
}


SQL = {
    "incoming": "INSERT INTO message_logs (message_id, chat_id, phone_number, direction, message_type,"
    " message_text, queue_status, target_queue, payload, message_time) VALUES ($1, $2, $3, 'incoming',"
    " 'text', $4, 'pending', 'incoming', $5, $6) ON CONFLICT (message_id) DO NOTHING RETURNING id",
    "claim": "SELECT id FROM message_logs WHERE id = $1 AND queue_status = 'pending' FOR UPDATE SKIP LOCKED",
    "published": "UPDATE message_logs SET queue_status = 'published', processed_at = now() WHERE id = $1",
    "cursor": "INSERT INTO chat_cursors (chat_id, last_message_time, last_message_id) VALUES ($1, $2, $3)"
    " ON CONFLICT (chat_id) DO UPDATE SET last_message_time = $2, last_message_id = $3",
    "contact": "INSERT INTO contacts (phone_number, name, business_name, last_message_at)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (phone_number) DO UPDATE"
    " SET last_message_at = excluded.last_message_at, updated_at = now() RETURNING id, is_client",
    "message": "INSERT INTO messages (contact_id, phone_number, message_id, message_text, timestamp)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING RETURNING id",
    "lock": "SELECT pg_advisory_xact_lock(7201, $1)",
    "get_contact": "SELECT * FROM contacts WHERE id = $1",
    "history": "SELECT * FROM messages WHERE contact_id = $1 ORDER BY timestamp DESC, id DESC LIMIT 20",
    "classified": "UPDATE contacts SET is_client = $2, classification_confidence = $3,"
    " classification_reasoning = $4 WHERE id = $1",
    "unanswered": "SELECT * FROM messages WHERE contact_id = $1 AND NOT is_from_bot AND answered_at IS NULL"
    " ORDER BY timestamp, id",
    "usage": "INSERT INTO llm_usage (purpose, model, prompt_tokens, output_tokens) VALUES ($1, $2, $3, $4)",
    "reply": "INSERT INTO messages (contact_id, phone_number, message_text, is_from_bot, timestamp, sent_by,"
    " outgoing_id, reply_to_message_id) VALUES ($1, $2, $3, true, $4, 'reply', $5, $6) RETURNING id",
    "answered": "UPDATE messages SET answered_at = $2 WHERE id = $1",
    "reply_published": "UPDATE messages SET published_at = now() WHERE id = $1 AND published_at IS NULL",
    "whitelist": "SELECT id FROM whitelist WHERE phone_number = $1",
    "outgoing": "INSERT INTO message_logs (outgoing_id, chat_id, phone_number, direction, message_type,"
    " message_text, reply_to_message_id, sent_by, queue_status, payload) VALUES ($1, $2, $3, 'outgoing',"
    " 'text', $4, $5, 'reply', 'sending', $6) ON CONFLICT (outgoing_id) DO NOTHING",
    "claim_outgoing": "SELECT id FROM message_logs WHERE outgoing_id = $1 FOR UPDATE SKIP LOCKED",
    "reply_chat": "SELECT chat_id FROM message_logs WHERE message_id = $1",
    "sent": "UPDATE message_logs SET queue_status = 'sent', wappi_status = 'done', wappi_message_id = $2,"
    " processed_at = $3, attempts = attempts + 1 WHERE id = $1",
}


def render(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def history_lines(history: list[asyncpg.Record]) -> str:
    return "\n".join(f"[{m['timestamp']:%Y-%m-%d %H:%M}] Клиент: {m['message_text']}" for m in history)


class Baseline:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.moderator_prompt = (PROMPTS / "moderator_prompt.txt").read_text(encoding="utf-8")
        self.sales_prompt = (PROMPTS / "sales_agent_prompt.txt").read_text(encoding="utf-8")
        self.received = 0
        self.replied = 0
        self.input_ended = False
        self.all_replied = asyncio.Event()

    async def open(self) -> None:
        self.gateway = await asyncpg.create_pool(self.args.gateway_db, min_size=4, max_size=10)
        self.agent = await asyncpg.create_pool(self.args.agent_db, min_size=4, max_size=10)
        limits = httpx.Limits(max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS)
        self.http = httpx.AsyncClient(base_url=self.args.sandbox, timeout=30, limits=limits)
        # httpcore matches every waiting request against every pooled connection each time one is freed:
        # requests queued inside it cost CPU that grows with the queue, so they wait here instead.
        self.http_slots = asyncio.Semaphore(HTTP_CONNECTIONS)
        self.connection = await aio_pika.connect_robust(RABBITMQ_URL)
        self.channel = await self.connection.channel(publisher_confirms=True)
        for role, (ttl, max_length) in QUEUE_ARGS.items():
            name = getattr(self.args, role)
            dlx = await self.channel.declare_exchange(
                f"{name}.dlx", aio_pika.ExchangeType.FANOUT, durable=True
            )
            await (await self.channel.declare_queue(f"{name}.dlq", durable=True)).bind(dlx)
            arguments = {"x-message-ttl": ttl, "x-max-length": max_length, "x-dead-letter-exchange": dlx.name}
            await self.channel.declare_queue(name, durable=True, arguments=arguments)
        for role, handler in (("incoming", self.answer), ("outgoing", self.send)):
            channel = await self.connection.channel()
            await channel.set_qos(prefetch_count=PREFETCH)
            await (await channel.get_queue(getattr(self.args, role))).consume(handler)

    async def publish(self, queue: str, body: dict[str, Any], message_id: str) -> None:
        message = aio_pika.Message(
            json.dumps(body, ensure_ascii=False).encode(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=message_id,
        )
        await self.channel.default_exchange.publish(message, routing_key=queue)

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        async with self.http_slots:
            answer = await self.http.request(method, path, **kwargs)
        return answer.json()

    async def ask(self, db: asyncpg.Connection, prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
        body = {
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema},
        }
        path = "/v1/models/gemini-2.5-pro:generateContent"
        data = await self.call("POST", path, json=body, headers={"x-goog-api-key": "bench"})
        purpose = "sales_agent" if "reply" in schema["properties"] else "moderator"
        usage = data["usageMetadata"]
        tokens = (usage["promptTokenCount"], usage["candidatesTokenCount"])
        # On the caller's connection: a second one per handler would starve the pool (the agent's pool is
        # sized for it, this one is not).
        await db.execute(SQL["usage"], purpose, "gemini-2.5-pro", *tokens)
        return json.loads(data["candidates"][0]["content"]["parts"][0]["text"])

    async def receive(self, message_id: str, chat_id: str, phone: str) -> None:
        """The gateway's part: read the chat, store the message, publish it."""
        params = {**WAPPI["params"], "chat_id": chat_id, "limit": 50, "order": "desc"}
        page = await self.call("GET", "/api/sync/messages/get", params=params, headers=WAPPI["headers"])
        message = next(m for m in page["messages"] if m["id"] == message_id)
        name, text = message["senderName"], message["body"]
        body = {
            "message_id": message_id,
            "chat_id": chat_id,
            "phone_number": phone,
            "sender_name": name,
            "message_text": text,
            "is_voice": False,
            "voice_url": None,
            "timestamp": message["timestamp"],
            "contact_info": {"FirstName": name, "BusinessName": message.get("business_name")},
            "message_type": "text",
        }
        sent_at = datetime.fromisoformat(message["timestamp"])
        payload = json.dumps(body)
        row_id = await self.gateway.fetchval(
            SQL["incoming"], message_id, chat_id, phone, text, payload, sent_at
        )
        async with self.gateway.acquire() as db, db.transaction():
            await db.fetchval(SQL["claim"], row_id)
            await self.publish(self.args.incoming, body, message_id)
            await db.execute(SQL["published"], row_id)
        await self.gateway.execute(SQL["cursor"], chat_id, sent_at, message_id)

    async def answer(self, delivery: aio_pika.abc.AbstractIncomingMessage) -> None:
        """The agent's part: store, classify, answer, publish the reply."""
        async with delivery.process():
            body = json.loads(delivery.body)
            phone, text, message_id = body["phone_number"], body["message_text"], body["message_id"]
            name, company = body["sender_name"], body["contact_info"]["BusinessName"]
            sent_at = datetime.fromisoformat(body["timestamp"])
            async with self.agent.acquire() as db, db.transaction():
                contact_id, is_client = await db.fetchrow(SQL["contact"], phone, name, company, sent_at)
                message_pk = await db.fetchval(SQL["message"], contact_id, phone, message_id, text, sent_at)
            async with self.agent.acquire() as db, db.transaction():
                await db.execute(SQL["lock"], zlib.crc32(phone.encode()) - (1 << 31))
                await db.fetchrow(SQL["get_contact"], contact_id)
                lines = history_lines(await db.fetch(SQL["history"], contact_id))
                if is_client is None:
                    prompt = render(
                        self.moderator_prompt,
                        contact_name=name,
                        full_name="не указано",
                        business_name=company,
                        conversation_history=lines,
                    )
                    verdict = await self.ask(db, prompt, MODERATOR_SCHEMA)
                    judged = (verdict["isClient"], verdict["confidence"], verdict["reasoning"])
                    await db.execute(SQL["classified"], contact_id, *judged)
                await db.fetch(SQL["unanswered"], contact_id)
                lines = history_lines(await db.fetch(SQL["history"], contact_id))
                now = datetime.now(UTC)
                prompt = render(
                    self.sales_prompt,
                    knowledge_base=KNOWLEDGE,
                    conversation_history=lines,
                    new_message=text,
                    current_datetime=f"{now:%Y-%m-%d %H:%M}",
                )
                reply = (await self.ask(db, prompt, SALES_SCHEMA))["reply"]
                outgoing_id = f"reply-{message_id}"
                reply_pk = await db.fetchval(
                    SQL["reply"], contact_id, phone, reply, now, outgoing_id, message_id
                )
                await db.execute(SQL["answered"], message_pk, now)
            outgoing = {
                "phone_number": phone,
                "message_text": reply,
                "mark_as_read": True,
                "reply_to_message_id": message_id,
                "outgoing_id": outgoing_id,
                "sent_by": "reply",
            }
            await self.publish(self.args.outgoing, outgoing, outgoing_id)
            await self.agent.execute(SQL["reply_published"], reply_pk)

    async def send(self, delivery: aio_pika.abc.AbstractIncomingMessage) -> None:
        """The sender's part: record, reply through Wappi, mark sent."""
        async with delivery.process():
            body = json.loads(delivery.body)
            phone, text, key = body["phone_number"], body["message_text"], body["outgoing_id"]
            reply_to = body["reply_to_message_id"]
            await self.gateway.fetchval(SQL["whitelist"], phone)
            chat_id, payload = f"{phone}@c.us", json.dumps(body)
            await self.gateway.execute(SQL["outgoing"], key, chat_id, phone, text, reply_to, payload)
            async with self.gateway.acquire() as db, db.transaction():
                row_id = await db.fetchval(SQL["claim_outgoing"], key)
                await db.fetchval(SQL["reply_chat"], reply_to)
                await self.call("POST", "/api/sync/message/mark/read", json={"message_id": reply_to}, **WAPPI)
                reply = {"body": text, "message_id": reply_to}
                answer = await self.call("POST", "/api/sync/message/reply", json=reply, **WAPPI)
                await db.execute(SQL["sent"], row_id, answer["message_id"], datetime.now(UTC))
        self.replied += 1
        if self.input_ended and self.replied >= self.received:
            self.all_replied.set()

    async def run(self) -> None:
        await self.open()
        print("ready", flush=True)
        slots = asyncio.Semaphore(RECEIVERS)
        tasks = set()
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def receive(line: str) -> None:
            async with slots:
                await self.receive(*line.split())

        while line := (await reader.readline()).decode().strip():
            self.received += 1
            task = asyncio.create_task(receive(line))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        self.input_ended = True
        if self.replied < self.received:
            await self.all_replied.wait()
        print("done", flush=True)
        # The runner reads this process's CPU time, then ends it (or ends it earlier, at its deadline).
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name in ("--sandbox", "--gateway-db", "--agent-db", "--incoming", "--outgoing"):
        parser.add_argument(name, required=True)
    asyncio.run(Baseline(parser.parse_args()).run())


if __name__ == "__main__":
    main()
