"""Many officers at once, on SQLite and PostgreSQL: no lost writes, no shared status index, one
current card, one person per passport, no deadlock, and an audit chain that still verifies.

Threads call the domain services on the app's engine, each in a transaction of its own (as the
API handlers do), or send requests through one TestClient. A failure injected after a card
was signed must leave nothing behind. The tests of a backend share one service (building one
costs a second) and count what changed, not totals.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func
from sqlmodel import Session, col, select

import keys.cards
from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.db import session_scope
from cardissuer.errors import ConflictError
from cardissuer.models import (
    AuditRecord,
    CardRecord,
    CardState,
    GrantCreate,
    OfficerRecord,
    PassportChange,
    PassportIn,
    PassportRecord,
    PassportState,
    PersonCreate,
    PersonRecord,
    StatusListRecord,
)
from cardissuer.services import audit, cards, registry
from cardissuer.services.access import Actor
from cardissuer.services.cards import IssuingContext
from cardissuer.services.officers import actor_of
from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    Service,
    assert_problem,
    login,
    new_passport,
    shared_service,
    snapshot,
    verify_chain,
)

T = TypeVar("T")
BIRTHS = itertools.count(1)


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture
def world(service: Service) -> World:
    return World(service.app)


class World:
    """The app's engine, its officers as actors, and shortcuts for the threads."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.engine = app.state.engine
        self.context: IssuingContext = issuing_context_of(app)
        with Session(self.engine) as session:
            self.actors = {
                officer.username: actor_of(officer)
                for officer in session.exec(select(OfficerRecord)).all()
            }
        self.registrar, self.supervisor = self.actors["registrar"], self.actors["supervisor"]

    def at(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def person_data(self, **overrides: Any) -> PersonCreate:
        birth = date(1940, 1, 1) + timedelta(days=next(BIRTHS))  # never a suspected duplicate
        values: dict[str, Any] = {
            "family_name": "PARALLEL",
            "given_names": "PERSON",
            "nationality": "ITA",
            "birth_date": birth.isoformat(),
            "passport": {"number": new_passport(), "issuing_country": "ITA"},
        }
        values.update(overrides)
        return PersonCreate.model_validate(values)

    def register_with_card(self, data: PersonCreate, actor: Actor | None = None) -> CardRecord:
        actor = actor or self.registrar
        with session_scope(self.engine) as session:
            person = registry.register(session, actor, data, at=self.at())
            cards.grant(
                session,
                actor,
                person.code,
                GrantCreate(service="hc"),
                at=self.at(),
                catalogue=["hc", "ed", "bk"],
                context=self.context,
            )
            return cards.issue(session, actor, person.code, at=self.at(), context=self.context)

    def issue(self, code: str, actor: Actor | None = None, key: str | None = None) -> CardRecord:
        with session_scope(self.engine) as session:
            return cards.issue(
                session,
                actor or self.registrar,
                code,
                at=self.at(),
                context=self.context,
                idempotency_key=key,
            )

    def grant(self, code: str, service: str) -> None:
        with session_scope(self.engine) as session:
            cards.grant(
                session,
                self.registrar,
                code,
                GrantCreate(service=service),
                at=self.at(),
                catalogue=["hc", "ed", "bk"],
                context=self.context,
            )

    def suspend(self, serial: str) -> None:
        with session_scope(self.engine) as session:
            cards.change_state(
                session, self.supervisor, serial, CardState.SUSPENDED, at=self.at(), reason="t"
            )

    def code_of(self, card: CardRecord) -> str:
        with Session(self.engine) as session:
            person = session.get(PersonRecord, card.person_id)
            assert person is not None
            return person.code

    def cards_of(self, code: str) -> list[CardRecord]:
        with Session(self.engine) as session:
            person = session.exec(select(PersonRecord).where(PersonRecord.code == code)).one()
            return list(
                session.exec(
                    select(CardRecord)
                    .where(CardRecord.person_id == person.id)
                    .order_by(col(CardRecord.id))
                ).all()
            )

    def count(self, table: Any) -> int:
        with Session(self.engine) as session:
            return session.exec(select(func.count()).select_from(table)).one()

    def status_indices(self) -> list[tuple[str, int]]:
        with Session(self.engine) as session:
            return [
                (list_id, index)
                for list_id, index in session.exec(
                    select(CardRecord.list_id, CardRecord.status_index)
                ).all()
            ]


def at_once(count: int, work: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``work(0..count-1)`` in as many threads, released together; results or errors."""
    barrier = threading.Barrier(count)

    def run(number: int) -> T | BaseException:
        barrier.wait()
        try:
            return work(number)
        except Exception as exc:  # reported to the test, which decides what is allowed
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def only(results: list[T | BaseException], *allowed: type[Exception]) -> list[T]:
    """The results, after checking that every error is one of ``allowed``."""
    errors = [r for r in results if isinstance(r, BaseException)]
    unexpected = [e for e in errors if not isinstance(e, allowed)]
    assert not unexpected, [f"{type(e).__name__}: {e}" for e in unexpected]
    return [r for r in results if not isinstance(r, BaseException)]


def test_fifty_registrations_at_once_each_with_a_card(world: World) -> None:
    persons, issued, entries = (
        world.count(PersonRecord),
        world.count(CardRecord),
        world.count(AuditRecord),
    )
    data = [world.person_data(given_names=f"PERSON {chr(65 + n % 26)}") for n in range(50)]
    new_cards = only(at_once(50, lambda n: world.register_with_card(data[n])))
    assert len(new_cards) == 50
    codes = {world.code_of(card) for card in new_cards}
    assert len(codes) == 50
    assert world.count(PersonRecord) == persons + 50
    assert world.count(CardRecord) == issued + 50
    indices = world.status_indices()
    assert len(set(indices)) == len(indices)
    with Session(world.engine) as session:
        numbers = session.exec(
            select(PassportRecord.number).where(PassportRecord.issuing_country == "ITA")
        ).all()
    assert sorted(numbers) == sorted(d.passport.number for d in data)
    report = verify_chain(world.app)
    assert report.entries == world.count(AuditRecord) == entries + 50 * 3


def test_ten_re_issues_of_one_card_at_once_leave_one_current_card(world: World) -> None:
    first = world.register_with_card(world.person_data())
    code = world.code_of(first)
    new_cards = only(at_once(10, lambda _: world.issue(code)))
    assert len({card.serial for card in new_cards}) == 10
    rows = world.cards_of(code)
    assert len(rows) == 11
    states = Counter(row.state for row in rows)
    assert states == {CardState.ACTIVE: 1, CardState.SUPERSEDED: 10}
    by_id = {row.id: row for row in rows}
    # The supersession forms one chain from the first card to the active one.
    chain, card = [], rows[0]
    while card.superseded_by is not None:
        chain.append(card.serial)
        card = by_id[card.superseded_by]
    assert card.state is CardState.ACTIVE
    assert len(chain) == 10
    verify_chain(world.app)


def test_idempotent_retries_at_once_issue_one_card(world: World) -> None:
    first = world.register_with_card(world.person_data())
    code = world.code_of(first)
    results = only(at_once(8, lambda _: world.issue(code, key="retry-me")))
    assert {card.serial for card in results} != {first.serial}
    assert len({card.serial for card in results}) == 1
    assert len(world.cards_of(code)) == 2
    # The same key for two people at once: one card, one refusal.
    other = [world.code_of(world.register_with_card(world.person_data())) for _ in range(2)]
    raced = at_once(2, lambda n: world.issue(other[n], key="shared-key"))
    assert len(only(raced, cards.IdempotencyKeyReusedError)) == 1
    verify_chain(world.app)


def test_one_passport_registered_at_once_makes_one_person(world: World) -> None:
    client = TestClient(world.app, raise_server_exceptions=False)
    headers = login(client, "registrar")
    persons = world.count(PersonRecord)
    for round_number in range(4):
        passport = {"number": new_passport(), "issuing_country": "ITA"}
        bodies = [
            world.person_data(family_name=name, passport=passport).model_dump(mode="json")
            for name in ("ROSSI", "BIANCHI", "ROSSI", "VERDI")
        ]
        post = partial(client.post, "/api/persons", headers=headers)
        responses = only(at_once(4, lambda n: post(json=bodies[n])))  # noqa: B023 - awaited here
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409, 409, 409], (round_number, [r.text for r in responses])
        for response in responses:
            if response.status_code == 409:
                assert_problem(response, 409, "passport-registered")
        assert world.count(PersonRecord) == persons + round_number + 1
    verify_chain(world.app)


def test_passport_changes_at_once_leave_one_current_passport(world: World) -> None:
    code = world.code_of(world.register_with_card(world.person_data()))

    def change(_: int) -> None:
        change = PassportChange(passport=PassportIn(number=new_passport(), issuing_country="ITA"))
        with session_scope(world.engine) as session:
            registry.change_passport(session, world.registrar, code, change, at=world.at())

    only(at_once(6, change))
    with Session(world.engine) as session:
        person = session.exec(select(PersonRecord).where(PersonRecord.code == code)).one()
        states = Counter(p.state for p in registry.passports_of(session, person))
    assert states == {PassportState.CURRENT: 1, PassportState.REPLACED: 6}


def test_grants_re_issues_and_suspensions_at_once_never_deadlock(world: World) -> None:
    """Every change takes the person's lock before the cards' and the audit head's."""
    persons = [world.register_with_card(world.person_data()) for _ in range(8)]
    codes = [world.code_of(card) for card in persons]
    jobs: list[Callable[[], object]] = []
    for number, (code, card) in enumerate(zip(codes, persons, strict=True)):
        other = codes[(number + 3) % len(codes)]
        jobs.append(partial(world.grant, code, "ed"))
        jobs.append(partial(world.suspend, card.serial))
        jobs.append(partial(world.issue, other))
    only(
        at_once(len(jobs), lambda n: jobs[n]()),
        cards.InvalidTransitionError,  # the card was superseded before it could be suspended
        cards.CardSuspendedError,  # the card was suspended before it could be re-issued
    )
    for code in codes:
        current = [c for c in world.cards_of(code) if c.state in cards.CURRENT_STATES]
        assert len(current) == 1, code
    indices = world.status_indices()
    assert len(set(indices)) == len(indices)
    verify_chain(world.app)


def test_a_failure_after_signing_leaves_no_card_and_no_used_index(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = world.register_with_card(world.person_data())
    code = world.code_of(first)
    before = snapshot(world.engine)
    indices = world.status_indices()

    failing = audit.append

    def append(session: Session, **entry: Any) -> AuditRecord:
        if entry["action"] == "card.issue":
            raise RuntimeError("injected failure after signing")
        return failing(session, **entry)

    signed: list[str] = []
    encode = keys.cards.encode_card

    def encode_and_note(*args: Any, **kwargs: Any) -> str:
        signed.append(encode(*args, **kwargs))
        return signed[-1]

    append_all = audit.append_many

    def append_many(session: Session, entries: Any, **options: Any) -> int:
        if any(entry.action == "card.issue" for entry in entries):
            raise RuntimeError("injected failure after signing")
        return append_all(session, entries, **options)

    monkeypatch.setattr(audit, "append", append)
    monkeypatch.setattr(audit, "append_many", append_many)  # the HTTP route's path
    monkeypatch.setattr(cards, "encode_card", encode_and_note)
    with pytest.raises(RuntimeError, match="injected"):
        world.issue(code)
    with pytest.raises(RuntimeError, match="injected"):
        world.grant(code, "ed")  # a grant re-issues the card: both roll back
    client = TestClient(world.app, raise_server_exceptions=False)
    headers = login(client, "registrar")
    answer = client.post(f"/api/persons/{code}/cards", headers=headers)
    assert_problem(answer, 500, "internal-error")
    assert "injected" not in answer.text
    assert len(signed) == 3  # the failures came after signing

    assert snapshot(world.engine) == before
    assert world.status_indices() == indices
    assert [c.state for c in world.cards_of(code)] == [CardState.ACTIVE]
    verify_chain(world.app)

    monkeypatch.undo()
    card = world.issue(code)
    assert [c.state for c in world.cards_of(code)] == [CardState.SUPERSEDED, CardState.ACTIVE]
    assert (card.list_id, card.status_index) not in indices
    verify_chain(world.app)


def test_a_failure_while_opening_a_status_list_leaves_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = world.register_with_card(world.person_data())
    code = world.code_of(card)
    lists = world.count(StatusListRecord)
    before = snapshot(world.engine)

    def full(session: Session, size: int) -> tuple[str, int]:
        session.add(StatusListRecord(list_id="99", size=size))
        session.flush()
        raise ConflictError("injected: the new list could not be announced")

    monkeypatch.setattr(cards, "open_list", full)
    with pytest.raises(ConflictError, match="injected"):
        world.issue(code)
    assert world.count(StatusListRecord) == lists
    assert snapshot(world.engine) == before
    verify_chain(world.app)


def test_status_lists_roll_over_under_load_without_deadlock(world: World) -> None:
    """Tiny lists make every other card open a new one while others wait on the audit chain.

    (A grant used to lock the audit chain before its re-issue opened a list: on PostgreSQL two
    such transactions deadlocked. Indices were drawn from the configured size, not the list's.)
    """
    persons = [world.register_with_card(world.person_data()) for _ in range(8)]
    codes = [world.code_of(card) for card in persons]
    with session_scope(world.engine) as session:
        count = session.exec(select(func.count()).select_from(StatusListRecord)).one()
        session.add(StatusListRecord(list_id=str(count + 1), size=4))
    world.context = dataclasses.replace(world.context, status_list_size=8)
    jobs: list[Callable[[], object]] = []
    for number, code in enumerate(codes):
        jobs.append(partial(world.grant, code, "bk"))
        jobs.append(partial(world.issue, codes[(number + 3) % len(codes)]))
    only(at_once(len(jobs), lambda n: jobs[n]()))
    assert world.count(StatusListRecord) > count + 2
    with Session(world.engine) as session:
        sizes = dict(session.exec(select(StatusListRecord.list_id, StatusListRecord.size)).all())
    indices = world.status_indices()
    assert len(set(indices)) == len(indices)
    assert all(index < sizes[list_id] for list_id, index in indices)
    for code in codes:
        assert [c.state for c in world.cards_of(code)].count(CardState.ACTIVE) == 1
    verify_chain(world.app)


def test_indices_are_drawn_within_the_size_of_their_list(world: World) -> None:
    """A list made before ``status_list_size`` was raised keeps its own size."""
    with session_scope(world.engine) as session:
        count = session.exec(select(func.count()).select_from(StatusListRecord)).one()
        session.add(StatusListRecord(list_id=str(count + 1), size=64))
    assert world.context.status_list_size > 64
    issued = [world.register_with_card(world.person_data()) for _ in range(6)]
    assert {card.list_id for card in issued} == {str(count + 1)}
    assert all(card.status_index < 64 for card in issued)
    with Session(world.engine) as session:  # and the list can be published
        world.app.state.publisher.status_list(session, str(count + 1), at=world.at())


def test_a_request_waiting_for_a_lock_does_not_stop_the_others(world: World) -> None:
    """A handler waiting for a row lock waits in the thread pool, not on the event loop."""
    if world.engine.dialect.name != "postgresql":
        pytest.skip("SQLite queues writers before the handler runs (BEGIN IMMEDIATE)")
    code = world.code_of(world.register_with_card(world.person_data()))
    photo = io.BytesIO()
    Image.new("RGB", (120, 150), (90, 60, 30)).save(photo, "JPEG")
    with (
        TestClient(world.app, raise_server_exceptions=False) as client,  # one event loop
        ThreadPoolExecutor(max_workers=2) as pool,
        Session(world.engine) as holder,
    ):
        headers = login(client, "registrar")
        holder.exec(select(PersonRecord).where(PersonRecord.code == code).with_for_update()).one()
        upload = pool.submit(
            client.put,
            f"/api/persons/{code}/portrait",
            headers=headers,
            files={"photo": ("me.jpg", photo.getvalue(), "image/jpeg")},
        )
        time.sleep(0.5)  # the upload now waits for the person's lock
        health = pool.submit(client.get, "/healthz")
        answered_while_locked = health.result(timeout=5) if _done_within(health, 2) else None
        holder.rollback()
        assert upload.result(timeout=30).status_code == 200
    assert answered_while_locked is not None, "the event loop was blocked by the upload"
    assert answered_while_locked.status_code == 200


def _done_within(future: Future[Any], seconds: float) -> bool:
    try:
        future.result(timeout=seconds)
    except TimeoutError:
        return False
    return True
