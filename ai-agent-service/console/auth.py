"""Who may use the console: the password checked in constant time under a per-address lock-out kept in
PostgreSQL (so it holds across restarts and replicas), and the signed session a right password earns, with
the CSRF token every console action must carry. No FastAPI here: console/session.py puts it on HTTP."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ConsoleSignInFailures
from service_kit.clock import Clock

# What a sign-in form's token is good for: long enough to type a password, short enough not to linger.
SIGN_IN_FORM_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class ConsoleSession:
    """What the signed cookie says: the CSRF token of this browser's forms, and when it was issued."""

    csrf: str
    issued_at: datetime
    signed_in: bool  # False: only a sign-in form's token


@dataclass(frozen=True)
class SignInCheck:
    """The outcome of one sign-in attempt."""

    accepted: bool
    locked_until: datetime | None = None  # set: this address may not try again before then
    attempts_left: int = 0  # wrong passwords this address may still give before it is locked out


@dataclass(frozen=True)
class ConsoleAuth:
    password: str  # CONSOLE_PASSWORD, or ADMIN_API_KEY
    signing_key: str
    session_lifetime: timedelta  # CONSOLE_SESSION_HOURS
    max_failures: int  # CONSOLE_MAX_FAILED_SIGN_INS
    lockout: timedelta  # CONSOLE_LOCKOUT_MINUTES
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock

    def issue(self, *, signed_in: bool) -> tuple[str, ConsoleSession]:
        """A new session (and a new CSRF token) as the cookie's signed value."""
        session = ConsoleSession(secrets.token_urlsafe(32), self.clock(), signed_in)
        value = self._serializer().dumps(
            {"csrf": session.csrf, "at": session.issued_at.timestamp(), "in": signed_in}
        )
        return value, session

    def read(self, value: str | None, *, signed_in: bool) -> ConsoleSession | None:
        """The session a cookie carries; None when it is missing, forged, of the other kind or expired
        (by the service's clock, so a test chooses the moment)."""
        if not value:
            return None
        try:
            data = self._serializer().loads(value)
            session = ConsoleSession(
                str(data["csrf"]), datetime.fromtimestamp(float(data["at"]), self.clock().tzinfo), data["in"]
            )
        except (BadSignature, KeyError, TypeError, ValueError, OverflowError):
            return None
        lifetime = self.session_lifetime if signed_in else SIGN_IN_FORM_LIFETIME
        if session.signed_in is not signed_in or not (
            session.issued_at <= self.clock() < session.issued_at + lifetime
        ):
            return None
        return session

    async def check_password(self, address: str, presented: str) -> SignInCheck:
        """Checks `presented` for a sign-in from `address`, unless that address is locked out; a wrong
        password counts towards the lock-out, a right one clears the count. One address's attempts are
        serialised by its row lock, so parallel guesses cannot slip past the limit."""
        now = self.clock()
        async with self.sessions.begin() as session:
            await self._forget_quiet_addresses(session, now)
            await session.execute(
                insert(ConsoleSignInFailures)
                .values(client_address=address, failures=0, last_failed_at=now)
                .on_conflict_do_nothing()
            )
            row = await session.get_one(ConsoleSignInFailures, address, with_for_update=True)
            if row.locked_until is not None and row.locked_until > now:
                return SignInCheck(False, locked_until=row.locked_until)
            if _same_secret(presented, self.password):
                await session.delete(row)
                return SignInCheck(True)
            quiet = now - row.last_failed_at > self.lockout
            row.failures = 1 if quiet else row.failures + 1
            row.last_failed_at = now
            if row.failures < self.max_failures:
                return SignInCheck(False, attempts_left=self.max_failures - row.failures)
            row.failures, row.locked_until = 0, now + self.lockout
            return SignInCheck(False, locked_until=row.locked_until)

    async def _forget_quiet_addresses(self, session: AsyncSession, now: datetime) -> None:
        """Rows of addresses neither locked nor failing lately count nothing any more."""
        await session.execute(
            delete(ConsoleSignInFailures).where(
                ConsoleSignInFailures.last_failed_at < now - self.lockout,
                or_(ConsoleSignInFailures.locked_until.is_(None), ConsoleSignInFailures.locked_until < now),
            )
        )

    def _serializer(self) -> URLSafeSerializer:
        return URLSafeSerializer(self.signing_key, salt="console-session")


def console_signing_key(admin_api_key: str, password: str) -> str:
    """The key sessions are signed with: from the admin key and the console password together, so changing
    either signs everyone out, and a stolen cookie cannot be used to guess the password offline."""
    return hmac.new(
        admin_api_key.encode(), b"console-session:" + password.encode(), hashlib.sha256
    ).hexdigest()


def _same_secret(presented: str, expected: str) -> bool:
    # Digests first: compare_digest then takes the same time whatever the lengths.
    return hmac.compare_digest(
        hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(expected.encode("utf-8")).digest(),
    )
