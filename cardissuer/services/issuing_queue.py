"""The service's issuance queue: card requests that arrive together share one transaction.

Why it exists: every write serialises on the database's write lock (SQLite) and on the audit
chain's head (both databases). With one transaction per request, 32 officers issuing at once
queue for that lock one behind the other, each paying its own BEGIN, a dozen statements and its
COMMIT, and SQLite's busy handler (sleep and retry, not a queue) lets some wait for seconds.
Here one writer thread per service process takes every request that has arrived (up to
``max_batch``), issues them with :func:`cardissuer.services.issuing.issue_many` in one
transaction (a query per batch instead of a dozen per card), commits once and answers each:
group commit, as databases do it for their own logs. Under light load a batch is a single
request and nothing waits for company.

What a caller can rely on:

* An answer comes after the commit: a card in an answer is stored, and it is shown as it stands
  at the commit (a card that a later request of the same batch superseded says so).
* Each request keeps its own outcome: a refusal (no entitlement, another office's person...)
  is that request's answer and writes nothing; the others go ahead.
* If the shared transaction fails as a whole (a database error), each of its requests is tried
  again alone, so one request's failure never becomes another's; what fails alone is answered
  with its exception, and nothing of it was written. A failure of the whole database (SQLite
  locked past its busy timeout) is not retried request by request: that would wait again per
  request, on the only writer thread.
* On PostgreSQL a row lock is waited for at most ``lock_timeout_s``: a person held by a long
  transaction elsewhere fails the batch (then only that person's request), instead of holding
  every officer's issuance behind it.
* The officer is read inside the write transaction: an account disabled a moment ago issues
  nothing.
* A request whose caller has gone (the HTTP client disconnected before its batch started) is
  not issued.

The thread starts with the first request and ends after ``idle_seconds`` without any, so an
application that never issues (or a test) leaves no thread behind. :meth:`IssuingQueue.close`
(the service stopping) answers what is queued and refuses the rest with a 503 problem until
:meth:`IssuingQueue.open` (the service starting again in the same process).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from cardissuer.core.db import session_scope
from cardissuer.errors import AuthenticationError, IssuerError
from cardissuer.models import CardRecord, OfficerRecord, RevokedSessionRecord
from cardissuer.services import blobs, issuing
from cardissuer.services.access import Actor
from cardissuer.services.cards import IssuingContext
from cardissuer.services.officers import SESSION_ENDED, actor_of

log = logging.getLogger("fmcard.issuing")

DEFAULT_MAX_BATCH = 64
DEFAULT_IDLE_SECONDS = 10.0
DEFAULT_LOCK_TIMEOUT_S = 5.0


class QueueClosedError(IssuerError):
    """The service is stopping: no new card is issued; retry with the same Idempotency-Key."""

    code = "unavailable"
    http_status = 503


@dataclass(frozen=True, slots=True)
class CardAsked:
    """One HTTP request for a card, as the route read it (the officer from the session token)."""

    officer_id: int
    code: str
    idempotency_key: str | None = None
    valid_days: int | None = None
    session_id: str | None = None
    """The session token's ``jti``: a session ended (logged out) meanwhile issues nothing."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of one request, and the officer behind it when the account is active (the
    caller needs it to audit a refusal)."""

    actor: Actor | None
    outcome: CardRecord | Exception
    qr_text: str | None = None
    """An issued card's signed text (``card_text``), read in the batch's transaction."""


_Job = tuple[CardAsked, "Future[Answer]"]


class IssuingQueue:
    """Issues the cards that concurrent requests ask for, many per transaction, on one thread."""

    def __init__(
        self,
        engine: Engine,
        context: IssuingContext,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._engine = engine
        self._context = context
        self._max_batch = max_batch
        self._idle_seconds = idle_seconds
        self._lock_timeout_ms = max(1, round(lock_timeout_s * 1000))
        self._clock = clock or (lambda: datetime.now(UTC).replace(microsecond=0))
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # None: stop
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        """Whether the writer thread is up (it starts with a request, ends when idle)."""
        with self._lock:
            return self._thread is not None

    async def issue(self, asked: CardAsked) -> Answer:
        """Queue ``asked`` and wait (without blocking the event loop) for its answer."""
        return await asyncio.wrap_future(self.submit(asked))

    def submit(self, asked: CardAsked) -> Future[Answer]:
        """Queue ``asked``; the future gets its :class:`Answer`."""
        future: Future[Answer] = Future()
        with self._lock:
            if self._closed:
                raise QueueClosedError("the service is stopping; retry in a moment")
            self._jobs.put((asked, future))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="fmcard-issuing", daemon=True
                )
                self._thread.start()
        return future

    def open(self) -> None:
        """Take requests again after :meth:`close` (the service starts again)."""
        with self._lock:
            self._closed = False

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new requests, answer those already queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._jobs.put(None)  # after every job already queued
        if thread is not None:
            thread.join(timeout)

    def _work(self) -> None:
        batch: list[_Job] = []
        try:
            while True:
                try:
                    first = self._jobs.get(timeout=self._idle_seconds)
                except queue.Empty:
                    first = None
                if first is None:  # idle, or told to stop: end unless work came in meanwhile
                    with self._lock:  # submit() puts under this lock: nothing slips in between
                        if self._closed or self._jobs.empty():
                            self._thread = None
                            return
                    continue
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        self._jobs.put(None)  # handled once this batch is answered
                        break
                    batch.append(job)
                self._answer(batch)
                batch = []
        except BaseException as exc:  # not a refusal or a database error: the thread dies
            with self._lock:
                self._thread = None  # the next request starts another
                pending = [*batch, *self._drain()]
            for _, future in pending:  # nobody may wait for a thread that is gone
                if not future.done():
                    future.set_exception(exc)
            raise

    def _drain(self) -> list[_Job]:
        jobs: list[_Job] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return jobs
            if job is not None:
                jobs.append(job)

    def _answer(self, batch: Sequence[_Job]) -> None:
        # A future that is no longer pending was cancelled: its caller has gone.
        live = [(asked, future) for asked, future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return
        asked = [item for item, _ in live]
        at = self._clock()
        try:
            answers = self._issue(asked, at)
        except Exception as exc:  # the shared transaction failed: nothing of it is stored
            if len(asked) == 1 or self._database_wide(exc):
                answers = [Answer(None, exc) for _ in asked]
            else:
                log.warning(
                    "a shared issuance transaction failed (%s); retrying its %d requests alone",
                    type(exc).__name__,
                    len(asked),
                )
                answers = [self._alone(item, at) for item in asked]
        for (_, future), answer in zip(live, answers, strict=True):
            future.set_result(answer)

    def _database_wide(self, exc: Exception) -> bool:
        """Whether ``exc`` says the whole database is unavailable (SQLite: locked past the busy
        timeout, or the file unusable), so that retrying request by request would only wait
        again for each request."""
        return isinstance(exc, OperationalError) and self._engine.dialect.name == "sqlite"

    def _alone(self, asked: CardAsked, at: datetime) -> Answer:
        try:
            return self._issue([asked], at)[0]
        except Exception as exc:
            return Answer(None, exc)

    def _issue(self, asked: Sequence[CardAsked], at: datetime) -> list[Answer]:
        """Issue ``asked`` in one transaction; raises (having stored nothing) if it fails."""
        with session_scope(self._engine) as session:
            if self._engine.dialect.name == "postgresql":
                session.connection().exec_driver_sql(
                    f"SET LOCAL lock_timeout = {self._lock_timeout_ms}"
                )
            officer_ids = sorted({item.officer_id for item in asked})
            officers = {
                officer.id: officer
                for officer in session.exec(
                    select(OfficerRecord).where(col(OfficerRecord.id).in_(officer_ids))
                ).all()
            }
            sessions = sorted({item.session_id for item in asked if item.session_id})
            ended = (
                set(
                    session.exec(
                        select(RevokedSessionRecord.jti).where(
                            col(RevokedSessionRecord.jti).in_(sessions)
                        )
                    ).all()
                )
                if sessions
                else set()
            )
            answers: list[Answer | None] = [None] * len(asked)
            requests: list[issuing.IssueRequest] = []
            places: list[int] = []
            for place, item in enumerate(asked):
                officer = officers.get(item.officer_id)
                if officer is None or not officer.active:
                    answers[place] = Answer(None, AuthenticationError("this account is disabled"))
                    continue
                if item.session_id in ended:
                    answers[place] = Answer(None, AuthenticationError(SESSION_ENDED))
                    continue
                requests.append(
                    issuing.IssueRequest(
                        actor_of(officer), item.code, item.idempotency_key, item.valid_days
                    )
                )
                places.append(place)
            outcomes = issuing.issue_many(session, requests, at=at, context=self._context)
            texts = blobs.qr_texts_of(
                session, [o.id for o in outcomes if isinstance(o, CardRecord)]
            )
            for place, request, outcome in zip(places, requests, outcomes, strict=True):
                text = texts.get(outcome.id or 0) if isinstance(outcome, CardRecord) else None
                answers[place] = Answer(request.actor, outcome, text)
        return [answer for answer in answers if answer is not None]
