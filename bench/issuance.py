"""Section 5: how fast the issuer service issues cards, in process and over its HTTP API.

Everything runs against the service's own code on two databases: SQLite (a file in a
temporary directory) and PostgreSQL (a temporary database on the local server, created and
dropped here as ``tests/cardissuer/conftest.py`` does; skipped with a note when unreachable).

Setup, untimed: for each database a child process (``python -m bench.issuance serve``) builds
the app with :func:`cardissuer.main.create_app` from ``FMCARD_WORKSPACE`` and
``FMCARD_DATABASE_URL``, seeds the demo office and officers, registers distinct persons with
one entitlement each (``registry.register`` + ``cards.grant``, as the registrar), writes their
codes to a file and then serves the same app with uvicorn on 127.0.0.1, as ``fmcard serve``
does. Both databases are set up at once; nothing is timed until both are ready.

1. Batch issuance, in this process, for persons who have no card yet (one card each):
   ``services.issuing.issue_batch`` (the bulk path: one call per 100 persons, one transaction
   each), and ``services.cards.issue`` called per card, 100 per transaction and one per
   transaction, through an app built here on the same workspace and database. Rounds of the
   six cases take turns (interleaved, as in :mod:`bench.timing`); tables show the best round
   and the median; the target of 1,000 cards/s is checked against ``issue_batch`` on SQLite.
   One more, instrumented, round per per-card ``issue`` case says where the time goes: the
   functions ``issue`` calls are wrapped with a timer (exclusive time: a wrapped function
   called by another is not counted twice; the table gives the median card's time per stage,
   robust to a busy machine), and SQLAlchemy's cursor events add the time spent inside the
   driver's ``execute``. The headline rates come from rounds without any of that.
2. HTTP API: log in once, then ``POST /api/persons/{code}/cards`` for persons without a card,
   first from 1 client (the service's latency without queueing), then from 32 concurrent
   clients (:mod:`bench.loadgen`, a process of its own: one keep-alive connection per client)
   until the requests run out or the time budget ends. Latency is client-side, from sending
   to the whole response; ``server`` columns are the service's own request log (``ms``, from
   its outermost middleware to the response).
3. Inside the service: the child times every statement inside the driver's ``execute`` by
   kind (:class:`StatementTimes`, SQLAlchemy cursor events; SIGUSR1 dumps them), so that lock
   waits (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's ``FOR UPDATE``) show where the
   concurrent requests queue.
"""

from __future__ import annotations

import json
import math
import os
import random
import secrets
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from time import perf_counter, sleep
from typing import Any
from unittest import mock

import httpx
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from bench.report import Check, Section, Table, ratio
from bench.timing import Timing, gc_paused, per_item
from bench.world import (
    ARABIC_FAMILY_NAMES,
    ARABIC_GIVEN_NAMES,
    ARABIC_NATIONALITIES,
    ARABIC_NATIVE_NAMES,
    CHINESE_NAMES,
    FAMILY_NAMES,
    GIVEN_NAMES,
    KINDS,
    LATIN_NATIONALITIES,
    Sample,
)
from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.core.db import session_scope
from cardissuer.errors import DuplicateSuspectedError
from cardissuer.main import create_app
from cardissuer.models import GrantCreate, OfficerRecord, PassportIn, PersonCreate
from cardissuer.seed import DEMO_PASSWORD, seed_demo
from cardissuer.services import audit, cards, issuing, registry
from cardissuer.services.access import Actor
from cardissuer.services.cards import IssuingContext
from cardissuer.services.officers import actor_of
from keys.cards import encode_card

Times = dict[str, list[float]]
"""Seconds per statement kind."""
POSTGRES_ENV = ("FMCARD_BENCH_POSTGRES", "FMCARD_TEST_POSTGRES")
POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
OFFICER = "registrar"
SERVICE = "hc"
ISSUE_ROUTE = "/api/persons/{code}/cards"
TARGET_CARDS_PER_S = 1_000.0
TARGET_P99_MS = 100.0
REQUEST_TIMEOUT_S = 30.0
SETUP_TIMEOUT_S = 300.0
WARMUP_CARDS = (3, 2)  # untimed, per database: in one transaction, then one per transaction
WARMUP_REQUESTS = 5
PERSONS_PER_TRANSACTION = 100  # during setup
WAIT_ROWS = 4


@dataclass(frozen=True, slots=True)
class Plan:
    """How much work the section does."""

    rounds: int
    """Timed rounds per case; the tables show the best and the median."""
    batch_cards: int
    """Cards per round issued ``per_transaction`` at a time (by ``issue_batch``, by ``issue``)."""
    per_transaction: int
    single_cards: int
    """Cards per round issued in a transaction each."""
    breakdown_batch: int
    breakdown_single: int
    """Cards of the instrumented round (stage breakdown), in batches and one by one."""
    http_requests: int
    """At most this many requests from the concurrent clients..."""
    http_budget_s: float
    """...and no new request after this many seconds."""
    http_clients: int
    http_reference: int
    """Requests from a single client first (no queueing)."""

    def persons(self) -> int:
        """Persons each database needs: every card and request is a first card."""
        return (
            sum(WARMUP_CARDS)
            + WARMUP_CARDS[0]  # issue_batch's own warm-up
            + self.rounds * (2 * self.batch_cards + self.single_cards)
            + self.breakdown_batch
            + self.breakdown_single
            + WARMUP_REQUESTS
            + self.http_reference
            + self.http_requests
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "batch_cards": self.batch_cards,
            "per_transaction": self.per_transaction,
            "single_cards": self.single_cards,
            "breakdown_batch": self.breakdown_batch,
            "breakdown_single": self.breakdown_single,
            "http_requests": self.http_requests,
            "http_budget_s": self.http_budget_s,
            "http_clients": self.http_clients,
            "http_reference": self.http_reference,
        }


FULL_PLAN = Plan(
    rounds=5,
    batch_cards=200,
    per_transaction=100,
    single_cards=40,
    breakdown_batch=100,
    breakdown_single=20,
    http_requests=800,
    http_budget_s=12.0,
    http_clients=32,
    http_reference=30,
)
QUICK_PLAN = Plan(
    rounds=2,
    batch_cards=100,
    per_transaction=100,
    single_cards=10,
    breakdown_batch=100,
    breakdown_single=10,
    http_requests=120,
    http_budget_s=1.2,
    http_clients=32,
    http_reference=8,
)


# --- the service processes ------------------------------------------------------------------------


@dataclass
class Backend:
    """One database with its workspace, its service process and the persons registered in it."""

    name: str
    url: str
    workspace: Path
    port: int
    log: Path
    codes_file: Path
    statements_file: Path
    process: subprocess.Popen[bytes] | None = None
    dumps: int = 0
    codes: list[str] = field(default_factory=list)
    taken: int = 0
    setup_s: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def take(self, count: int) -> list[str]:
        """The next ``count`` persons without a card."""
        if self.taken + count > len(self.codes):
            raise RuntimeError(f"{self.name}: {count} more persons wanted, not registered")
        chunk = self.codes[self.taken : self.taken + count]
        self.taken += count
        return chunk

    def left(self) -> int:
        return len(self.codes) - self.taken


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(backend: Backend, persons: int, seed: int) -> None:
    """Start the setup-then-serve child of ``backend`` (it returns at once)."""
    env = {
        **os.environ,
        "FMCARD_WORKSPACE": str(backend.workspace),
        "FMCARD_DATABASE_URL": backend.url,
    }
    config = {
        "persons": persons,
        "seed": seed,
        "port": backend.port,
        "codes_file": str(backend.codes_file),
        "statements_file": str(backend.statements_file),
    }
    with backend.log.open("wb") as log:
        backend.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bench.issuance", "serve", json.dumps(config)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(backend: Backend, timeout: float) -> None:
    """Wait until the child has registered its persons and answers ``/healthz``."""
    deadline = perf_counter() + timeout
    with httpx.Client(base_url=backend.base_url, timeout=2.0) as client:
        while perf_counter() < deadline:
            process = backend.process
            if process is None or process.poll() is not None:
                raise RuntimeError(f"{backend.name}: the service exited\n{_log_tail(backend)}")
            try:
                if client.get("/healthz").status_code == 200 and backend.codes_file.exists():
                    break
            except httpx.HTTPError:
                pass
            sleep(0.1)
        else:
            raise RuntimeError(f"{backend.name}: not ready after {timeout:.0f} s")
    data = json.loads(backend.codes_file.read_text("utf-8"))
    backend.codes = list(data["codes"])
    backend.setup_s = float(data["seconds"])


def _stop(backend: Backend) -> None:
    process = backend.process
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def _log_tail(backend: Backend, lines: int = 15) -> str:
    try:
        text_lines = backend.log.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text_lines[-lines:])


def _statement_times(backend: Backend) -> Times:
    """The service's statement times so far (see :class:`StatementTimes`)."""
    process = backend.process
    if process is None or process.poll() is not None:
        raise RuntimeError(f"{backend.name}: the service is not running")
    backend.dumps += 1
    process.send_signal(signal.SIGUSR1)
    deadline = perf_counter() + 10
    while perf_counter() < deadline:
        try:
            data = json.loads(backend.statements_file.read_text("utf-8"))
        except (OSError, ValueError):
            data = {}
        if data.get("dump") == backend.dumps:
            return {kind: list(values) for kind, values in data["times"].items()}
        sleep(0.02)
    raise RuntimeError(f"{backend.name}: no statement times from the service")


def _postgres_admin_url() -> str:
    for name in POSTGRES_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return POSTGRES_DEFAULT


def _postgres_problem(admin_url: str) -> str | None:
    """Why PostgreSQL cannot be used (``None``: it can)."""
    try:
        engine = create_engine(admin_url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # any failure to connect means "not available"
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    return None


@contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of ``admin_url``, dropped afterwards."""
    name = f"fmcard_bench_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                    ),
                    {"n": name},
                )
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


def scratch_databases(section: Section) -> Iterator[tuple[str, str, Path, ExitStack]]:
    """Each database a section measures on, made for it: SQLite always, PostgreSQL when its
    server answers (else the section says why it was skipped). Yields the backend's name, the
    database URL, a temporary directory and the stack that removes both; they last until the
    caller's loop moves on, and the caller may push its own clean-ups onto the stack."""
    admin_url = _postgres_admin_url()
    problem = _postgres_problem(admin_url)
    if problem:
        section.notes.append(f"PostgreSQL skipped: {problem}")
    for backend in ["sqlite"] if problem else ["sqlite", "postgresql"]:
        with ExitStack() as stack:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            if backend == "sqlite":
                url = f"sqlite:///{directory / 'fmcard.db'}"
            else:
                url = stack.enter_context(_postgres_database(admin_url))
            yield backend, url, directory, stack


# --- the child: set up, then serve ----------------------------------------------------------------


def _registrar(engine: Engine) -> Actor:
    with session_scope(engine) as session:
        officer = session.exec(select(OfficerRecord).where(OfficerRecord.username == OFFICER)).one()
        return actor_of(officer)


def _random_person(rng: random.Random, number: int, passports: set[str]) -> PersonCreate:
    """A distinct foreigner; kinds by names in turn, as the world's cards."""
    kind = KINDS[number % len(KINDS)]
    native: str | None = None
    chinese: str | None = None
    if kind == "ar+zh":
        family, given = rng.choice(ARABIC_FAMILY_NAMES), rng.choice(ARABIC_GIVEN_NAMES)
        nationality = rng.choice(ARABIC_NATIONALITIES)
        native = rng.choice(ARABIC_NATIVE_NAMES)
    else:
        family, given = rng.choice(FAMILY_NAMES), rng.choice(GIVEN_NAMES)
        nationality = rng.choice(LATIN_NATIONALITIES)
    if kind != "latin":
        chinese = rng.choice(CHINESE_NAMES)
    birth = date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
    passport = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(9))
    while passport in passports:
        passport = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(9))
    passports.add(passport)
    return PersonCreate(
        family_name=family,
        given_names=given,
        native_name=native,
        chinese_name=chinese,
        nationality=nationality,
        birth_date=birth.isoformat(),
        passport=PassportIn(number=passport, issuing_country=nationality),
    )


def register_persons(engine: Engine, actor: Actor, count: int, seed: int) -> list[str]:
    """Register ``count`` distinct persons with one entitlement each; return their codes.

    A drawn person who looks like one registered before (same nationality and birth date,
    a close name) is drawn again rather than confirmed as new.
    """
    rng = random.Random(seed)
    passports: set[str] = set()
    codes: list[str] = []
    number = 0
    while len(codes) < count:
        at = datetime.now(UTC).replace(microsecond=0)
        with session_scope(engine) as session:
            for _ in range(min(PERSONS_PER_TRANSACTION, count - len(codes))):
                for _attempt in range(50):
                    number += 1
                    data = _random_person(rng, number, passports)
                    try:
                        person = registry.register(session, actor, data, at=at)
                    except DuplicateSuspectedError:
                        continue
                    break
                else:
                    raise RuntimeError("50 suspected duplicates in a row: the names ran out")
                cards.grant(
                    session,
                    actor,
                    person.code,
                    GrantCreate(service=SERVICE),
                    at=at,
                    catalogue=[SERVICE],
                    context=None,
                )
                codes.append(person.code)
    return codes


def statement_kind(statement: str) -> str:
    """A statement's verb and table: ``SELECT audit_head FOR UPDATE``, ``INSERT card``..."""
    words = statement.split()
    if not words:
        return "?"
    verb = words[0].upper()
    if verb == "SELECT":
        upper = [word.upper() for word in words]
        table = words[upper.index("FROM") + 1] if "FROM" in upper else "(no table)"
        locking = " FOR UPDATE" if "UPDATE" in upper[-4:] and "FOR" in upper[-5:] else ""
        return f"SELECT {table.strip(chr(34))}{locking}"
    if verb in ("INSERT", "DELETE") and len(words) > 2:
        return f"{verb} {words[2].strip(chr(34))}"
    if verb == "UPDATE" and len(words) > 1:
        return f"UPDATE {words[1].strip(chr(34))}"
    if verb in ("BEGIN", "RELEASE"):
        return " ".join(words[:2]).upper()
    return verb


class StatementTimes:
    """In the service process: seconds inside the driver's ``execute``, per statement kind.

    Waiting for a lock happens there (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's ``FOR
    UPDATE``), so this says where concurrent requests queue. ``dump`` (on SIGUSR1) writes the
    lists so far to a file, with a sequence number the bench waits for.
    """

    def __init__(self, engine: Engine, path: Path) -> None:
        self.times: defaultdict[str, list[float]] = defaultdict(list)
        self.path = path
        self.dumps = 0
        self._local = threading.local()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self._local.start = perf_counter()

    def _after(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.times[statement_kind(statement)].append(perf_counter() - self._local.start)

    def dump(self, *_: Any) -> None:
        self.dumps += 1
        partial = self.path.with_suffix(".part")
        snapshot = {kind: list(values) for kind, values in list(self.times.items())}
        partial.write_text(json.dumps({"dump": self.dumps, "times": snapshot}), "utf-8")
        partial.replace(self.path)


def serve(config: dict[str, Any]) -> None:
    """The child: the app from the environment's settings, demo data, persons, then uvicorn."""
    import uvicorn

    app = create_app(Settings())
    engine: Engine = app.state.engine
    seed_demo(engine, issuing_context_of(app), environment=app.state.settings.environment)
    started = perf_counter()
    codes = register_persons(engine, _registrar(engine), int(config["persons"]), config["seed"])
    seconds = perf_counter() - started
    recorder = StatementTimes(engine, Path(config["statements_file"]))
    signal.signal(signal.SIGUSR1, recorder.dump)
    codes_file = Path(config["codes_file"])
    partial = codes_file.with_suffix(".part")
    partial.write_text(json.dumps({"codes": codes, "seconds": seconds}), "utf-8")
    partial.replace(codes_file)
    # As ``fmcard serve`` runs one worker: keep the service's JSON logging, no access log.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(config["port"]),
        log_level="warning",
        log_config=None,
        access_log=False,
    )


# --- 1. batch issuance, in process ----------------------------------------------------------------


@dataclass
class Target:
    """The service on one database, opened in this process."""

    backend: Backend
    engine: Engine
    context: IssuingContext
    actor: Actor


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    target: Target
    per_transaction: int
    cards: int
    bulk: bool = False
    """``issuing.issue_batch`` per transaction instead of ``cards.issue`` per card."""

    @property
    def label(self) -> str:
        if self.bulk:
            return f"issue_batch, {self.per_transaction} cards per transaction"
        if self.per_transaction == 1:
            return "issue, 1 card per transaction"
        return f"issue, {self.per_transaction} cards per transaction"


def _issue_all(
    target: Target, codes: Sequence[str], per_transaction: int, *, bulk: bool = False
) -> None:
    for start in range(0, len(codes), per_transaction):
        with session_scope(target.engine) as session:
            if bulk:
                issuing.issue_batch(
                    session,
                    target.actor,
                    codes[start : start + per_transaction],
                    at=datetime.now(UTC).replace(microsecond=0),
                    context=target.context,
                )
                continue
            for code in codes[start : start + per_transaction]:
                cards.issue(
                    session,
                    target.actor,
                    code,
                    at=datetime.now(UTC).replace(microsecond=0),
                    context=target.context,
                )


def _timed_round(case: Case) -> float:
    """Seconds per card over one round of ``case`` (fresh persons)."""
    codes = case.target.backend.take(case.cards)
    with gc_paused():
        start = perf_counter()
        _issue_all(case.target, codes, case.per_transaction, bulk=case.bulk)
        elapsed = perf_counter() - start
    return elapsed / len(codes)


BEGIN_COMMIT = "database: begin + commit (pool, BEGIN, COMMIT)"
REST = "database: rest of issue (Card, CardRecord, savepoint + INSERT)"
STAGES: tuple[tuple[str, object, str], ...] = (
    ("signing: keys.encode_card", cards, "encode_card"),
    ("audit: audit.append", audit, "append"),
    ("audit: signed checkpoint (audit.checkpoint)", audit, "checkpoint"),
    ("database: get_person (SELECT ... FOR UPDATE)", cards, "get_person"),
    ("database: active_grants", cards, "active_grants"),
    ("database: _current_cards", cards, "_current_cards"),
    ("database: open_list (newest list, COUNT its cards)", cards, "open_list"),
)
"""Functions ``issue`` calls that the instrumented round times: (label, module, name)."""


class StageClock:
    """Exclusive wall time per stage, and time inside the driver's ``execute`` per stage."""

    def __init__(self, base: str) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.sql: defaultdict[str, float] = defaultdict(float)
        self.statements: defaultdict[str, int] = defaultdict(int)
        self.calls: defaultdict[str, int] = defaultdict(int)
        self._marks: list[tuple[dict[str, float], dict[str, float]]] = []
        self._stack = [base]
        self._mark = perf_counter()
        self._sql_start = 0.0

    def _charge(self) -> None:
        now = perf_counter()
        self.seconds[self._stack[-1]] += now - self._mark
        self._mark = now

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._charge()
        self._stack.append(name)
        try:
            yield
        finally:
            self._charge()
            self._stack.pop()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            with self.stage(name):
                return fn(*args, **kwargs)

        return timed

    def restart(self) -> None:
        """Forget everything so far (set-up of the round); the clock runs from now."""
        self.seconds.clear()
        self.sql.clear()
        self.statements.clear()
        self.calls.clear()
        self._marks.clear()
        self._mark = perf_counter()

    def finish(self) -> None:
        self._charge()

    def card_done(self) -> None:
        """Mark the end of one card: :meth:`per_card` splits the totals at these marks."""
        self._charge()
        self._marks.append((dict(self.seconds), dict(self.sql)))

    def per_card(self, label: str) -> tuple[list[float], list[float]]:
        """Each card's seconds in stage ``label``, in all and inside the driver's execute."""
        seconds, sql = [], []
        previous: tuple[dict[str, float], dict[str, float]] = ({}, {})
        for mark in self._marks:
            seconds.append(mark[0].get(label, 0.0) - previous[0].get(label, 0.0))
            sql.append(mark[1].get(label, 0.0) - previous[1].get(label, 0.0))
            previous = mark
        return seconds, sql

    def before_execute(self, *_: Any) -> None:
        self._sql_start = perf_counter()

    def after_execute(
        self,
        _connection: Any,
        _cursor: Any,
        statement: str,
        *_: Any,
    ) -> None:
        elapsed = perf_counter() - self._sql_start
        stage = self._stack[-1]
        if statement.lstrip()[:5].upper() == "BEGIN":  # SQLite's BEGIN IMMEDIATE
            self.seconds[stage] -= elapsed
            self.seconds[BEGIN_COMMIT] += elapsed
            stage = BEGIN_COMMIT
        self.sql[stage] += elapsed
        self.statements[stage] += 1


def _instrumented_round(case: Case) -> tuple[StageClock, float, int]:
    """One round with every stage timed: the clock, the wall seconds and the cards."""
    target = case.target
    codes = target.backend.take(case.cards)
    clock = StageClock(BEGIN_COMMIT)
    with ExitStack() as stack:
        for label, module, name in STAGES:
            if hasattr(module, name):
                original = getattr(module, name)
                stack.enter_context(mock.patch.object(module, name, clock.wrap(label, original)))
        event.listen(target.engine, "before_cursor_execute", clock.before_execute)
        event.listen(target.engine, "after_cursor_execute", clock.after_execute)
        stack.callback(event.remove, target.engine, "before_cursor_execute", clock.before_execute)
        stack.callback(event.remove, target.engine, "after_cursor_execute", clock.after_execute)
        with gc_paused():
            start = perf_counter()
            clock.restart()
            for first in range(0, len(codes), case.per_transaction):
                with session_scope(target.engine) as session:
                    for code in codes[first : first + case.per_transaction]:
                        with clock.stage(REST):
                            cards.issue(
                                session,
                                target.actor,
                                code,
                                at=datetime.now(UTC).replace(microsecond=0),
                                context=target.context,
                            )
                        clock.card_done()
            clock.finish()
            elapsed = perf_counter() - start
    return clock, elapsed, len(codes)


# --- 2. HTTP --------------------------------------------------------------------------------------


@dataclass
class HttpRun:
    clients: int
    latencies: list[float]
    """Seconds per successful request (201), client side."""
    errors: dict[str, int]
    wall: float
    server_ms: list[float]
    statements: Times = field(default_factory=dict)
    """Seconds inside the service's driver per statement kind, during this run."""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall if self.wall > 0 else math.nan

    def to_json(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "requests_ok": len(self.latencies),
            "errors": self.errors,
            "seconds": self.wall,
            "requests_per_s": self.rate,
            "latency_ms": _percentiles_ms(self.latencies),
            "server_ms": _percentiles(self.server_ms),
            "statements_ms": {
                kind: {"count": len(values), "total_s": sum(values), **_percentiles_ms(values)}
                for kind, values in self.statements.items()
            },
        }


def _percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of ``values`` (sorted or not); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": _percentile(values, 50),
        "p90": _percentile(values, 90),
        "p99": _percentile(values, 99),
        "max": max(values) if values else math.nan,
    }


def _percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    return _percentiles([value * 1000 for value in seconds])


def _login(backend: Backend) -> str:
    response = httpx.post(
        backend.base_url + "/api/auth/login",
        json={"username": OFFICER, "password": DEMO_PASSWORD},
        timeout=REQUEST_TIMEOUT_S,
    )
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


def _server_ms(backend: Backend, offset: int) -> list[float]:
    """The service's own timings of successful issues logged after byte ``offset``."""
    timings: list[float] = []
    with backend.log.open("rb") as log:
        log.seek(offset)
        for line in log:
            if not line.startswith(b"{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("route") == ISSUE_ROUTE and entry.get("status") == 201 and "ms" in entry:
                timings.append(float(entry["ms"]))
    return timings


def _http_run(
    backend: Backend, token: str, codes: Sequence[str], *, clients: int, budget: float
) -> HttpRun:
    """``clients`` concurrent connections issue one card for each of ``codes`` until done or
    ``budget`` ends, driven by :mod:`bench.loadgen` in a process of its own."""
    job = {
        "host": "127.0.0.1",
        "port": backend.port,
        "headers": {"Authorization": f"Bearer {token}"},
        "method": "POST",
        "paths": [ISSUE_ROUTE.format(code=code) for code in codes],
        "clients": clients,
        "budget_s": budget,
        "timeout_s": REQUEST_TIMEOUT_S,
    }
    offset = backend.log.stat().st_size
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=budget + REQUEST_TIMEOUT_S + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{backend.name}: the load generator failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    latencies = [seconds for status, seconds in result["latencies"] if status == 201]
    errors: defaultdict[str, int] = defaultdict(int, result["errors"])
    for status, _ in result["latencies"]:
        if status != 201:
            errors[str(status)] += 1
    return HttpRun(
        clients, latencies, dict(errors), float(result["wall_s"]), _server_ms(backend, offset)
    )


def _http(backend: Backend, plan: Plan) -> tuple[HttpRun, HttpRun]:
    """The 1-client reference run, then the concurrent run, against ``backend``'s service."""
    token = _login(backend)
    warmup = backend.take(WARMUP_REQUESTS)
    with httpx.Client(
        base_url=backend.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT_S,
    ) as client:
        for code in warmup:
            client.post(f"/api/persons/{code}/cards")
    before = _statement_times(backend)
    reference = _http_run(
        backend,
        token,
        backend.take(plan.http_reference),
        clients=1,
        budget=plan.http_budget_s,
    )
    middle = _statement_times(backend)
    concurrent = _http_run(
        backend,
        token,
        backend.take(min(plan.http_requests, backend.left())),
        clients=plan.http_clients,
        budget=plan.http_budget_s,
    )
    after = _statement_times(backend)
    reference.statements = _since(before, middle)
    concurrent.statements = _since(middle, after)
    return reference, concurrent


def _since(
    earlier: dict[str, list[float]], later: dict[str, list[float]]
) -> dict[str, list[float]]:
    return {kind: values[len(earlier.get(kind, [])) :] for kind, values in later.items()}


# --- the section ----------------------------------------------------------------------------------


def run(samples: Sequence[Sample], *, plan: Plan, seed: int, repeats: int) -> Section:
    section = Section("issuance", "5. Issuance (issuer service: services.cards.issue, HTTP API)")
    admin_url = _postgres_admin_url()
    postgres_problem = _postgres_problem(admin_url)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fmcard-bench-")))
        urls = {"SQLite": f"sqlite:///{root / 'sqlite' / 'fmcard.db'}"}
        if postgres_problem is None:
            urls["PostgreSQL"] = stack.enter_context(_postgres_database(admin_url))
        else:
            section.notes.append(
                f"PostgreSQL skipped: not reachable at "
                f"{make_url(admin_url).render_as_string(hide_password=True)} ({postgres_problem})"
            )
        backends = []
        for name, url in urls.items():
            folder = root / name.lower()
            folder.mkdir(exist_ok=True)
            backends.append(
                Backend(
                    name,
                    url,
                    folder / "workspace",
                    _free_port(),
                    folder / "service.log",
                    folder / "codes.json",
                    folder / "statements.json",
                )
            )
        for backend in backends:
            stack.callback(_stop, backend)
        setup_start = perf_counter()
        for number, backend in enumerate(backends):
            _start(backend, plan.persons(), seed + number)
        ready = []
        for backend in backends:
            try:
                _wait_ready(backend, SETUP_TIMEOUT_S)
            except RuntimeError as exc:
                section.notes.append(f"{backend.name} skipped: setup failed: {exc}")
                _stop(backend)
                continue
            ready.append(backend)
        backends = ready
        setup_wall = perf_counter() - setup_start
        if not backends:
            return section
        alongside = ", while the other database was set up too" if len(backends) > 1 else ""
        for backend in backends:
            section.notes.append(
                f"setup ({backend.name}, untimed): {len(backend.codes):,} persons registered "
                f"(registry.register + cards.grant, {PERSONS_PER_TRANSACTION} per transaction) "
                f"in {backend.setup_s:.1f} s, {len(backend.codes) / backend.setup_s:,.0f} "
                f"persons/s{alongside}"
            )
        section.data["plan"] = plan.to_json()
        section.data["persons_per_database"] = plan.persons()
        phases = {"setup (both databases at once)": setup_wall}

        started = perf_counter()
        targets = [_open(backend, stack) for backend in backends]
        batch = _batch(section, targets, samples, plan, repeats)
        for target in targets:
            target.engine.dispose()
        phases["batch issuance"] = perf_counter() - started
        started = perf_counter()
        _http_section(section, backends, plan, batch)
        phases["HTTP"] = perf_counter() - started
    section.data["phase_seconds"] = phases
    section.notes.append(
        "time spent: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())
    )
    return section


def _open(backend: Backend, stack: ExitStack) -> Target:
    """The service's app on ``backend``'s workspace and database, built in this process."""
    app = create_app(Settings(workspace=backend.workspace, database_url=backend.url))
    engine: Engine = app.state.engine
    stack.callback(engine.dispose)
    return Target(backend, engine, issuing_context_of(app), _registrar(engine))


def _batch(
    section: Section,
    targets: Sequence[Target],
    samples: Sequence[Sample],
    plan: Plan,
    repeats: int,
) -> dict[str, Timing]:
    cases: list[Case] = []
    for target in targets:
        name = target.backend.name
        cases.append(
            Case(
                f"{name} issue_batch",
                target,
                plan.per_transaction,
                plan.batch_cards,
                bulk=True,
            )
        )
        cases.append(Case(f"{name} batch", target, plan.per_transaction, plan.batch_cards))
        cases.append(Case(f"{name} single", target, 1, plan.single_cards))
    for target in targets:  # untimed: compile the statements, fill the pools
        _issue_all(target, target.backend.take(WARMUP_CARDS[0]), WARMUP_CARDS[0])
        _issue_all(target, target.backend.take(WARMUP_CARDS[0]), WARMUP_CARDS[0], bulk=True)
        _issue_all(target, target.backend.take(WARMUP_CARDS[1]), 1)
    samples_by_case: dict[str, list[float]] = {case.key: [] for case in cases}
    for _ in range(plan.rounds):
        for case in cases:
            samples_by_case[case.key].append(_timed_round(case))
    timings = {
        case.key: Timing(
            min(samples_by_case[case.key]),
            statistics.median(samples_by_case[case.key]),
            case.cards,
            plan.rounds,
        )
        for case in cases
    }
    signer = targets[0].context.signer
    signing = per_item(
        lambda sample: encode_card(sample.card, signer), samples, repeats=repeats, min_time=0.05
    )

    table = Table(
        f"Cards signed and stored per second: services.issuing.issue_batch and "
        f"services.cards.issue, a first card for each person (best of {plan.rounds} rounds, "
        f"interleaved)",
        ("database", "transactions", "cards", "ms/card", "(median)", "cards/s", "vs sign only"),
    )
    for case in cases:
        timing = timings[case.key]
        table.add(
            case.target.backend.name,
            case.label,
            f"{plan.rounds} x {case.cards}",
            f"{timing.best * 1e3:.2f}",
            f"({timing.median * 1e3:.2f})",
            f"{timing.rate:,.0f}",
            f"{ratio(timing.rate, signing.rate):.3f}",
        )
    table.add(
        "(none)",
        "keys.encode_card alone, same key",
        len(samples),
        f"{signing.best * 1e3:.2f}",
        f"({signing.median * 1e3:.2f})",
        f"{signing.rate:,.0f}",
        "1.000",
    )
    section.tables.append(table)

    breakdown_cases = []
    for target in targets:
        name = target.backend.name
        breakdown_cases.append(
            Case(f"{name} batch", target, plan.per_transaction, plan.breakdown_batch)
        )
        breakdown_cases.append(Case(f"{name} single", target, 1, plan.breakdown_single))
    _breakdown(section, breakdown_cases, timings)

    sqlite_bulk = timings.get("SQLite issue_batch")
    if sqlite_bulk is not None:
        section.checks.append(
            Check(
                f"SQLite, issue_batch, {plan.per_transaction} cards per transaction",
                f">= {TARGET_CARDS_PER_S:,.0f} cards/s",
                f"{sqlite_bulk.rate:,.0f} cards/s ({sqlite_bulk.best * 1e3:.2f} ms/card)",
                sqlite_bulk.rate >= TARGET_CARDS_PER_S,
            )
        )
    for target in targets:
        name = target.backend.name
        bulk, per_card = timings[f"{name} issue_batch"], timings[f"{name} batch"]
        section.notes.append(
            f"{name}: issue_batch {bulk.rate:,.0f} cards/s "
            f"({ratio(bulk.rate, TARGET_CARDS_PER_S):.2f}x the {TARGET_CARDS_PER_S:,.0f} "
            f"cards/s target; {ratio(bulk.rate, per_card.rate):.1f}x issue per card, "
            f"{per_card.rate:,.0f} cards/s, {plan.per_transaction} per transaction)"
        )
    section.data["batch"] = {
        "timings": {key: timing.to_json() for key, timing in timings.items()},
        "signing_alone": signing.to_json(),
    }
    return timings


def _breakdown(section: Section, cases: Sequence[Case], timings: dict[str, Timing]) -> None:
    """The instrumented round of each case as a table: the median card's time per stage.

    Medians, not means, so that a card slowed down by the rest of the machine does not show
    as a slow stage; only ``begin + commit``, which happens once per transaction, is the mean
    per card."""
    measured = {case.key: _instrumented_round(case) for case in cases}
    labels = [label for label, module, name in STAGES if hasattr(module, name)]
    labels += [REST, BEGIN_COMMIT]
    columns = tuple(f"{case.target.backend.name} {case.per_transaction}/tx" for case in cases)
    table = Table(
        "Where an issuance's time goes: one instrumented round, ms for the median card, "
        "exclusive (of which inside the driver's execute); [n x] = calls per card",
        ("stage", *columns),
    )
    stage_ms: dict[str, dict[str, tuple[float, float]]] = {case.key: {} for case in cases}
    for case in cases:
        clock, _, count = measured[case.key]
        for label in labels:
            if label == BEGIN_COMMIT:
                stage_ms[case.key][label] = (
                    clock.seconds[label] / count * 1e3,
                    clock.sql[label] / count * 1e3,
                )
            else:
                seconds, sql = clock.per_card(label)
                stage_ms[case.key][label] = (
                    statistics.median(seconds) * 1e3,
                    statistics.median(sql) * 1e3,
                )
    first_clock, _, first_count = measured[cases[0].key]
    for label in labels:
        calls = first_clock.calls.get(label, 0) / first_count
        row_label = f"{label} [{calls:g}x]" if calls and calls != 1 else label
        table.add(
            row_label,
            *(
                f"{stage_ms[case.key][label][0]:.2f} ({stage_ms[case.key][label][1]:.2f})"
                for case in cases
            ),
        )
    totals, means, plain, shares, statements = [], [], [], [], []
    data: dict[str, Any] = {}
    for case in cases:
        clock, elapsed, count = measured[case.key]
        rows = stage_ms[case.key]
        total = sum(value[0] for value in rows.values())
        totals.append(f"{total:.2f} ({sum(value[1] for value in rows.values()):.2f})")
        means.append(f"{elapsed / count * 1e3:.2f}")
        plain.append(f"{timings[case.key].best * 1e3:.2f}")
        groups = {"signing": 0.0, "audit": 0.0, "database": 0.0}
        for label, value in rows.items():
            groups[label.split(":")[0]] += value[0]
        shares.append(" / ".join(f"{100 * value / total:.0f}" for value in groups.values()))
        statements.append(f"{sum(clock.statements.values()) / count:.1f}")
        data[case.key] = {
            "cards": count,
            "seconds": elapsed,
            "median_card_ms": {label: value[0] for label, value in rows.items()},
            "median_card_sql_ms": {label: value[1] for label, value in rows.items()},
            "total_stage_s": dict(clock.seconds),
            "total_sql_s": dict(clock.sql),
            "statements": dict(clock.statements),
            "calls": dict(clock.calls),
            "share_percent": {key: 100 * value / total for key, value in groups.items()},
        }
    table.add("= sum of the rows (SQL)", *totals)
    table.add("  mean card of this round, with timers", *means)
    table.add("  best round without timers (table above)", *plain)
    table.add("signing / audit / database, % of the sum", *shares)
    table.add("SQL statements per card", *statements)
    section.tables.append(table)
    section.data["breakdown"] = data


def _http_section(
    section: Section, backends: Sequence[Backend], plan: Plan, batch: dict[str, Timing]
) -> None:
    table = Table(
        f"HTTP API: POST {ISSUE_ROUTE}, a first card for each person; uvicorn, 1 worker "
        f"(client latency ms; server = the service's request log)",
        (
            "database",
            "clients",
            "requests",
            "errors",
            "req/s",
            "p50",
            "p90",
            "p99",
            "max",
            "server p50",
            "server p99",
            "vs in-process 1/tx",
        ),
    )
    data: dict[str, Any] = {}
    waits: list[tuple[str, HttpRun, HttpRun]] = []
    for backend in backends:
        try:
            reference, concurrent = _http(backend, plan)
        except (httpx.HTTPError, RuntimeError) as exc:
            section.notes.append(f"HTTP on {backend.name} failed: {exc}\n{_log_tail(backend)}")
            continue
        finally:
            _stop(backend)
        in_process = batch[f"{backend.name} single"].rate
        for result in (reference, concurrent):
            client_ms = _percentiles_ms(result.latencies)
            server = _percentiles(result.server_ms)
            table.add(
                backend.name,
                result.clients,
                len(result.latencies),
                sum(result.errors.values()),
                f"{result.rate:,.0f}",
                f"{client_ms['p50']:.1f}",
                f"{client_ms['p90']:.1f}",
                f"{client_ms['p99']:.1f}",
                f"{client_ms['max']:.1f}",
                f"{server['p50']:.1f}",
                f"{server['p99']:.1f}",
                f"{ratio(result.rate, in_process):.2f}",
            )
        p99 = _percentile(concurrent.latencies, 99) * 1000
        section.checks.append(
            Check(
                f"HTTP issue p99, {plan.http_clients} clients, {backend.name}",
                f"< {TARGET_P99_MS:.0f} ms",
                f"{p99:,.0f} ms ({concurrent.rate:,.0f} req/s)",
                p99 < TARGET_P99_MS,
            )
        )
        if concurrent.errors:
            section.notes.append(f"HTTP on {backend.name}: errors {concurrent.errors}")
        data[backend.name] = {"one_client": reference.to_json(), "concurrent": concurrent.to_json()}
        waits.append((backend.name, reference, concurrent))
    section.tables.append(table)
    if waits:
        section.tables.append(_waits_table(waits, plan.http_clients))
    section.data["http"] = data


def _waits_table(runs: Sequence[tuple[str, HttpRun, HttpRun]], clients: int) -> Table:
    """Where the service's requests spend their time in the driver: lock waits show here."""
    table = Table(
        f"Inside the service: time in the driver's execute per statement kind, the {WAIT_ROWS} "
        f"largest with {clients} clients (ms per statement; waiting for a lock counts here)",
        (
            "database",
            "statement",
            "per request",
            "1 client mean",
            f"{clients} mean",
            "p50",
            "p99",
            "max",
            "% of server time",
        ),
    )
    for name, reference, concurrent in runs:
        requests = max(1, len(concurrent.latencies) + sum(concurrent.errors.values()))
        one = max(1, len(reference.latencies) + sum(reference.errors.values()))
        server_s = sum(concurrent.server_ms) / 1000
        ranked = sorted(concurrent.statements.items(), key=lambda item: -sum(item[1]))
        for kind, values in ranked[:WAIT_ROWS]:
            lone = reference.statements.get(kind, [])
            stats = _percentiles_ms(values)
            table.add(
                name,
                kind,
                f"{len(values) / requests:.1f}",
                f"{statistics.fmean(lone) * 1e3:.2f}" if lone else "-",
                f"{statistics.fmean(values) * 1e3:.2f}",
                f"{stats['p50']:.2f}",
                f"{stats['p99']:.1f}",
                f"{stats['max']:.1f}",
                f"{100 * sum(values) / server_s:.0f}" if server_s else "-",
            )
        every = [value for values in concurrent.statements.values() for value in values]
        lone_all = [value for values in reference.statements.values() for value in values]
        table.add(
            name,
            "all statements",
            f"{len(every) / requests:.1f}",
            f"{sum(lone_all) / one * 1e3:.2f} /req" if lone_all else "-",
            f"{sum(every) / requests * 1e3:.2f} /req",
            "",
            "",
            "",
            f"{100 * sum(every) / server_s:.0f}" if server_s else "-",
        )
    return table


def _main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[0] != "serve":
        print("usage: python -m bench.issuance serve CONFIG_JSON", file=sys.stderr)
        return 2
    serve(json.loads(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
