"""One-time codes: the holder proves that they read the mail of an address.

A code is six random digits, sent to the address and kept only as a keyed hash (HMAC-SHA-256
under a key derived from the session secret), beside a keyed hash of the address and of the
client (its IP address): the table lists no addresses and no IP addresses. A code ends
after ``one_time_code_minutes``, after :data:`MAX_WRONG_TRIES` wrong guesses, once used, and
when a newer code is sent to the same address (only the newest one counts).

Rate limits, over the last hour: ``one_time_codes_per_address_per_hour`` codes per address
(then no more mail goes to it, and the holder is told nothing different, so that nobody can
learn an address's history) and ``one_time_codes_per_client_per_hour`` per client (then the
client is told to wait: that says nothing about any address). Both are counted under locks
(:func:`cardissuer.core.db.lock_key`), so parallel requests cannot pass them together.

The functions take the time and the key as arguments; only the portal's routes read the
clock and the settings.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from cardissuer.core.db import lock_key
from cardissuer.portal.models import OneTimeCodeRecord

CODE_DIGITS = 6
MAX_WRONG_TRIES = 5
WINDOW = timedelta(hours=1)
SIGN_IN = "sign-in"


def portal_key(session_secret: str) -> bytes:
    """The portal's own key, derived from the session secret (never the secret itself)."""
    return hmac.new(session_secret.encode(), b"fmcard-portal-key", hashlib.sha256).digest()


def keyed_hash(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def address_hash(key: bytes, address: str) -> str:
    """The address as the tables know it: case-insensitive (mail systems treat it so)."""
    return keyed_hash(key, "address", address.strip().lower())


def client_hash(key: bytes, client: str) -> str:
    return keyed_hash(key, "client", client)


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


class Refusal(enum.StrEnum):
    """Why no code was made (the first is never shown to the holder as such)."""

    ADDRESS_LIMIT = "address-limit"
    CLIENT_LIMIT = "client-limit"


@dataclass(frozen=True, slots=True)
class Issued:
    """A code made and stored (in the caller's transaction), to be sent."""

    code: str
    record: OneTimeCodeRecord


def issue(
    session: Session,
    *,
    key: bytes,
    address: str,
    client: str,
    at: datetime,
    minutes: int,
    per_address: int,
    per_client: int,
) -> Issued | Refusal:
    """Make a code for ``address`` unless a rate limit is reached.

    The counts are taken under locks on the client and on the address (:func:`lock_key`,
    always in that order), held until the caller's transaction ends, so that requests sent
    in parallel are counted one after the other and never pass a limit together (each
    extra code would be another :data:`MAX_WRONG_TRIES` guesses at the address, and a mail
    nobody asked for)."""
    by_address, by_client = address_hash(key, address), client_hash(key, client)
    since = at - WINDOW
    lock_key(session, "code-client", by_client)
    lock_key(session, "code-address", by_address)
    client_count = session.exec(
        select(func.count())
        .select_from(OneTimeCodeRecord)
        .where(OneTimeCodeRecord.client_hash == by_client, OneTimeCodeRecord.created_at > since)
    ).one()
    if client_count >= per_client:
        return Refusal.CLIENT_LIMIT
    address_count = session.exec(
        select(func.count())
        .select_from(OneTimeCodeRecord)
        .where(OneTimeCodeRecord.address_hash == by_address, OneTimeCodeRecord.created_at > since)
    ).one()
    if address_count >= per_address:
        return Refusal.ADDRESS_LIMIT
    code = new_code()
    record = OneTimeCodeRecord(
        address_hash=by_address,
        client_hash=by_client,
        code_hash=keyed_hash(key, "code", f"{by_address}:{code}"),
        purpose=SIGN_IN,
        created_at=at,
        expires_at=at + timedelta(minutes=minutes),
    )
    session.add(record)
    session.flush()
    return Issued(code, record)


def withdraw(session: Session, record: OneTimeCodeRecord) -> None:
    """Delete a code whose mail could not be sent (it was committed before sending, so that
    the rate-limit locks are not held across the mail server): it never counts against a
    limit and can never be entered."""
    session.execute(delete(OneTimeCodeRecord).where(col(OneTimeCodeRecord.id) == record.id))
    session.commit()


class Outcome(enum.StrEnum):
    """What entering a code gave."""

    ACCEPTED = "accepted"
    WRONG = "wrong"
    EXPIRED = "expired"
    """No live code: none sent, expired, used, or ended by too many wrong tries."""


def _aware(value: datetime, like: datetime) -> datetime:
    # SQLite hands back naive UTC.
    return value.replace(tzinfo=like.tzinfo) if value.tzinfo is None else value


def verify(session: Session, *, key: bytes, address: str, code: str, at: datetime) -> Outcome:
    """Check ``code`` against the newest code sent to ``address``; count a wrong one.

    The row is locked so that concurrent guesses are counted one by one."""
    by_address = address_hash(key, address)
    newest = session.exec(
        select(OneTimeCodeRecord)
        .where(OneTimeCodeRecord.address_hash == by_address, OneTimeCodeRecord.purpose == SIGN_IN)
        .order_by(col(OneTimeCodeRecord.created_at).desc(), col(OneTimeCodeRecord.id).desc())
        .limit(1)
        .with_for_update()
    ).first()
    if (
        newest is None
        or newest.used_at is not None
        or newest.attempts >= MAX_WRONG_TRIES
        or _aware(newest.expires_at, at) <= at
    ):
        return Outcome.EXPIRED
    wanted = keyed_hash(key, "code", f"{by_address}:{code.strip()}")
    if not hmac.compare_digest(wanted, newest.code_hash):
        newest.attempts += 1
        session.add(newest)
        return Outcome.WRONG if newest.attempts < MAX_WRONG_TRIES else Outcome.EXPIRED
    newest.used_at = at
    session.add(newest)
    return Outcome.ACCEPTED


def prune(session: Session, *, at: datetime) -> int:
    """Delete codes that can no longer be used nor count for a rate limit; return how many."""
    cutoff = at - WINDOW
    result = session.exec(
        delete(OneTimeCodeRecord).where(
            col(OneTimeCodeRecord.created_at) < cutoff,
            col(OneTimeCodeRecord.expires_at) < at,
        )
    )
    return int(result.rowcount or 0)
