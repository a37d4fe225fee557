"""The issuance queue and ``issuing.issue_many``, on SQLite and PostgreSQL.

Requests that arrive together share one transaction, yet each keeps the outcome it would have
had alone, in order: refusals write nothing and do not stop the others, two requests for one
person supersede in turn, one idempotency key gives one card, a failure of the shared
transaction is retried request by request, and nothing is answered before the commit.

Batches are made deterministic with the queue's clock: the writer reads it once per batch,
after taking the batch, so a clock that blocks holds the writer while the test queues more.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

import keys.cards
from cardissuer.core.db import make_engine, session_scope
from cardissuer.errors import AccessDeniedError, AuthenticationError, IssuerError, NotFoundError
from cardissuer.models import CardRecord, CardState, OfficerRecord, PersonRecord, Role
from cardissuer.services import audit, cards, issuing
from cardissuer.services.access import RecordHiddenError
from cardissuer.services.cards import (
    CardSuspendedError,
    IdempotencyKeyReusedError,
    NoEntitlementError,
    StatusListFullError,
)
from cardissuer.services.issuing import IssueRequest
from cardissuer.services.issuing_queue import Answer, CardAsked, IssuingQueue, QueueClosedError
from schemas import code as foreigner_code
from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    OTHER_OFFICE,
    Service,
    assert_problem,
    shared_service,
)
from verifier import Reason


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def many(service: Service, requests: Sequence[IssueRequest]) -> list[Any]:
    """``issue_many`` in one transaction; each outcome as (serial, state) or the error."""
    with session_scope(service.engine) as session:
        outcomes = issuing.issue_many(
            session, requests, at=datetime.now(UTC), context=service.context
        )
        return [
            outcome if isinstance(outcome, IssuerError) else (outcome.serial, outcome.state)
            for outcome in outcomes
        ]


class HeldClock:
    """A queue clock that holds the writer at its first batch until released."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> datetime:
        if not self.release.is_set():
            self.reached.set()
            assert self.release.wait(timeout=30)
        return datetime.now(UTC).replace(microsecond=0)


def queue_of(service: Service, **options: Any) -> IssuingQueue:
    return IssuingQueue(service.engine, service.context, **options)


def batched(
    queue: IssuingQueue, clock: HeldClock, first: CardAsked, rest: Sequence[CardAsked]
) -> list[Future[Answer]]:
    """``first`` alone, then ``rest`` all in the writer's next batch."""
    futures = [queue.submit(first)]
    assert clock.reached.wait(timeout=30)
    futures += [queue.submit(asked) for asked in rest]
    clock.release.set()
    for future in futures:
        future.result(timeout=60)
    return futures


# --- issue_many: each request its own outcome ---------------------------------------------


def test_refusals_in_a_batch_write_nothing_and_do_not_stop_the_others(service: Service) -> None:
    registrar = service.actor("registrar")
    service.officer("batch-auditor", Role.AUDITOR)
    auditor = service.actor("batch-auditor")
    good = service.entitled(3)
    bare = service.register()  # no entitlement
    service.officer("other-registrar", Role.REGISTRAR, office=OTHER_OFFICE)
    foreign = service.entitled(1, "other-registrar")[0]
    suspended, card = service.with_card()
    answer = service.client.post(
        f"/api/cards/{card['serial']}/suspend",
        headers=service.headers("supervisor"),
        json={"reason": "test"},
    )
    assert answer.status_code == 200, answer.text
    before = {code: len(service.cards_of(code)) for code in (bare, foreign, suspended)}
    seq = service.audit_seq()

    outcomes = many(
        service,
        [
            IssueRequest(registrar, good[0]),
            IssueRequest(registrar, "NOT-A-CODE"),
            IssueRequest(registrar, foreigner_code.generate()),  # well formed, nobody has it
            IssueRequest(registrar, foreign),
            IssueRequest(auditor, good[1]),
            IssueRequest(registrar, bare),
            IssueRequest(registrar, suspended),
            IssueRequest(registrar, good[2], valid_days=30),
        ],
    )

    assert isinstance(outcomes[1], NotFoundError)
    assert isinstance(outcomes[2], NotFoundError)
    assert isinstance(outcomes[3], RecordHiddenError)  # answered as "not found"
    assert str(outcomes[3]) == str(outcomes[2])  # nothing tells the two apart
    assert isinstance(outcomes[4], AccessDeniedError)
    assert isinstance(outcomes[5], NoEntitlementError)
    assert isinstance(outcomes[6], CardSuspendedError)
    assert [o[1] for o in (outcomes[0], outcomes[7])] == [CardState.ACTIVE, CardState.ACTIVE]
    assert {code: len(service.cards_of(code)) for code in before} == before
    assert service.cards_of(good[1]) == []
    short = service.cards_of(good[2])[0]
    assert (short.expires_at - short.valid_from).days == 30
    assert [e.action for e in service.audit_after(seq)] == ["card.issue", "card.issue"]
    assert service.reasons(service.text_of(service.cards_of(good[0])[0])) == [Reason.VALID]
    service.verify_chain()


def test_two_requests_for_one_person_in_a_batch_supersede_in_turn(service: Service) -> None:
    registrar = service.actor("registrar")
    code, first = service.with_card()
    seq = service.audit_seq()

    outcomes = many(service, [IssueRequest(registrar, code), IssueRequest(registrar, code)])

    rows = service.cards_of(code)
    assert [row.serial for row in rows] == [first["serial"], outcomes[0][0], outcomes[1][0]]
    assert [row.state for row in rows] == [
        CardState.SUPERSEDED,
        CardState.SUPERSEDED,
        CardState.ACTIVE,
    ]
    assert rows[0].superseded_by == rows[1].id
    assert rows[1].superseded_by == rows[2].id
    # Each answer shows its card as it stands at the commit.
    assert [o[1] for o in outcomes] == [CardState.SUPERSEDED, CardState.ACTIVE]
    assert [e.action for e in service.audit_after(seq)] == [
        "card.superseded",
        "card.issue",
        "card.superseded",
        "card.issue",
    ]
    service.verify_chain()


def test_one_idempotency_key_in_a_batch_gives_one_card(service: Service) -> None:
    registrar = service.actor("registrar")
    service.officer("second-registrar", Role.REGISTRAR)
    second = service.actor("second-registrar")
    codes = service.entitled(2)

    outcomes = many(
        service,
        [
            IssueRequest(registrar, codes[0], idempotency_key="batch-key-1"),
            IssueRequest(registrar, codes[0], idempotency_key="batch-key-1"),  # a retry
            IssueRequest(registrar, codes[1], idempotency_key="batch-key-1"),  # another person
            IssueRequest(second, codes[0], idempotency_key="batch-key-1"),  # another officer
            IssueRequest(registrar, codes[0], "batch-key-1", valid_days=30),  # other options
        ],
    )

    assert outcomes[0] == outcomes[1]
    assert isinstance(outcomes[2], IdempotencyKeyReusedError)
    assert isinstance(outcomes[3], IdempotencyKeyReusedError)
    assert isinstance(outcomes[4], IdempotencyKeyReusedError)
    assert len(service.cards_of(codes[0])) == 1
    assert service.cards_of(codes[1]) == []
    # A later batch with the same key returns the same card.
    again = many(service, [IssueRequest(registrar, codes[0], idempotency_key="batch-key-1")])
    assert again[0][0] == outcomes[0][0]
    service.verify_chain()


def test_a_strict_batch_refuses_before_writing_anything(service: Service) -> None:
    registrar = service.actor("registrar")
    codes = [*service.entitled(3), service.register()]  # the last has no entitlement
    before, seq = service.snapshot(), service.audit_seq()
    with session_scope(service.engine) as session, pytest.raises(NoEntitlementError):
        issuing.issue_batch(
            session, registrar, codes, at=datetime.now(UTC), context=service.context
        )
    assert service.snapshot() == before
    assert service.audit_seq() == seq


# --- the queue --------------------------------------------------------------------------------


def test_requests_that_arrive_together_share_one_transaction(service: Service) -> None:
    officer_id = service.actor("registrar").officer_id
    codes = service.entitled(21)
    clock = HeldClock()
    queue = queue_of(service, clock=clock)
    commits: list[int] = []
    listen = _count_commits(service, commits)
    try:
        futures = batched(
            queue,
            clock,
            CardAsked(officer_id, codes[0]),
            [CardAsked(officer_id, c) for c in codes[1:]],
        )
    finally:
        listen()
        queue.close()
    answers = [future.result() for future in futures]
    assert all(isinstance(a.outcome, CardRecord) for a in answers), answers
    assert all(a.actor is not None and a.actor.officer_id == officer_id for a in answers)
    assert len(commits) == 2  # the first request alone, then the other twenty together
    records = [a.outcome for a in answers if isinstance(a.outcome, CardRecord)]
    assert len({(r.list_id, r.status_index) for r in records}) == 21
    texts = [a.qr_text or "" for a in answers if isinstance(a.outcome, CardRecord)]
    assert texts == [service.text_of(r) for r in records]
    assert service.reasons(*texts) == [Reason.VALID] * 21
    service.verify_chain()


def _count_commits(service: Service, commits: list[int]) -> Callable[[], None]:
    from sqlalchemy import event

    def on_commit(_connection: Any) -> None:
        commits.append(1)

    event.listen(service.engine, "commit", on_commit)
    return lambda: event.remove(service.engine, "commit", on_commit)


def test_a_failed_shared_transaction_is_retried_request_by_request(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    officer_id = service.actor("registrar").officer_id
    codes = service.entitled(6)
    poison = codes[3]
    real = keys.cards.encode_card

    def failing(card: Any, *args: Any, **kwargs: Any) -> str:
        if card.code == poison:
            raise RuntimeError("injected failure for one person")
        return real(card, *args, **kwargs)

    monkeypatch.setattr(cards, "encode_card", failing)  # the one signing path
    clock = HeldClock()
    queue = queue_of(service, clock=clock)
    seq = service.audit_seq()
    try:
        futures = batched(
            queue,
            clock,
            CardAsked(officer_id, codes[0]),
            [CardAsked(officer_id, c) for c in codes[1:]],
        )
    finally:
        queue.close()
    answers = [future.result() for future in futures]
    failed = [a for a in answers if isinstance(a.outcome, Exception)]
    assert len(failed) == 1
    assert "injected" in str(failed[0].outcome)
    assert [len(service.cards_of(code)) for code in codes] == [1, 1, 1, 0, 1, 1]
    assert len(service.audit_after(seq)) == 5
    service.verify_chain()


def test_a_disabled_officer_issues_nothing(service: Service) -> None:
    service.officer("leaving-registrar", Role.REGISTRAR)
    leaving = service.actor("leaving-registrar")
    code = service.entitled(1)[0]
    with session_scope(service.engine) as session:
        officer = session.get(OfficerRecord, leaving.officer_id)
        assert officer is not None
        officer.active = False
        session.add(officer)
    queue = queue_of(service)
    try:
        answer = queue.submit(CardAsked(leaving.officer_id, code)).result(timeout=60)
    finally:
        queue.close()
    assert answer.actor is None
    assert isinstance(answer.outcome, AuthenticationError)
    assert service.cards_of(code) == []


def test_a_request_whose_caller_has_gone_is_not_issued(service: Service) -> None:
    officer_id = service.actor("registrar").officer_id
    codes = service.entitled(2)
    clock = HeldClock()
    queue = queue_of(service, clock=clock)
    try:
        first = queue.submit(CardAsked(officer_id, codes[0]))
        assert clock.reached.wait(timeout=30)
        gone = queue.submit(CardAsked(officer_id, codes[1]))
        assert gone.cancel()  # the client disconnected while it waited
        clock.release.set()
        assert isinstance(first.result(timeout=60).outcome, CardRecord)
    finally:
        queue.close()
    assert service.cards_of(codes[1]) == []


def test_closing_answers_what_was_queued_then_refuses(service: Service) -> None:
    officer_id = service.actor("registrar").officer_id
    codes = service.entitled(4)
    clock = HeldClock()
    queue = queue_of(service, clock=clock)
    first = queue.submit(CardAsked(officer_id, codes[0]))
    assert clock.reached.wait(timeout=30)
    queued = [queue.submit(CardAsked(officer_id, code)) for code in codes[1:]]
    closer = threading.Thread(target=queue.close)
    closer.start()
    clock.release.set()
    closer.join(timeout=60)
    assert not closer.is_alive()
    assert all(isinstance(f.result(timeout=0).outcome, CardRecord) for f in [first, *queued])
    with pytest.raises(QueueClosedError):
        queue.submit(CardAsked(officer_id, codes[0]))
    queue.open()  # the service starts again in the same process
    try:
        again = queue.submit(CardAsked(officer_id, codes[0])).result(timeout=60)
    finally:
        queue.close()
    assert isinstance(again.outcome, CardRecord)  # a re-issue for the first person


def test_the_writer_thread_ends_when_idle_and_comes_back(service: Service) -> None:
    officer_id = service.actor("registrar").officer_id
    codes = service.entitled(2)
    queue = queue_of(service, idle_seconds=0.05)
    try:
        first = queue.submit(CardAsked(officer_id, codes[0])).result(timeout=60)
        assert isinstance(first.outcome, CardRecord)
        deadline = time.monotonic() + 30
        while queue.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not queue.running
        second = queue.submit(CardAsked(officer_id, codes[1])).result(timeout=60)
        assert isinstance(second.outcome, CardRecord)
    finally:
        queue.close()


# --- through HTTP ---------------------------------------------------------------------------


def test_concurrent_http_issues_each_get_their_card(service: Service) -> None:
    codes = service.entitled(24)
    headers = service.headers("registrar")
    seq = service.audit_seq()
    results: list[Any] = [None] * len(codes)
    start = threading.Barrier(len(codes))

    def post(number: int) -> None:
        start.wait()
        results[number] = service.client.post(
            f"/api/persons/{codes[number]}/cards", headers=headers
        )

    threads = [threading.Thread(target=post, args=(n,)) for n in range(len(codes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [r.status_code for r in results] == [201] * len(codes), [r.text for r in results]
    serials = [r.json()["serial"] for r in results]
    assert len(set(serials)) == len(codes)
    assert [service.cards_of(code)[0].serial for code in codes] == serials
    assert len(service.audit_after(seq)) == len(codes)
    service.verify_chain()


def test_a_refused_http_issue_is_audited_in_the_officers_name(service: Service) -> None:
    code = service.entitled(1)[0]
    auditor = service.officer("http-auditor", Role.AUDITOR)
    seq = service.audit_seq()
    answer = service.client.post(f"/api/persons/{code}/cards", headers=auditor)
    assert_problem(answer, 403, "access-denied")
    entries = service.audit_after(seq)
    assert [(e.outcome, e.officer_id) for e in entries] == [
        ("denied", service.actor("http-auditor").officer_id)
    ]
    assert service.cards_of(code) == []


def test_an_unknown_http_issue_is_a_problem_not_a_crash(service: Service) -> None:
    headers = service.headers("registrar")
    assert_problem(
        service.client.post(f"/api/persons/{foreigner_code.generate()}/cards", headers=headers),
        404,
        "not-found",
    )
    assert_problem(
        service.client.post("/api/persons/nope/cards", headers=headers), 404, "not-found"
    )
    client = TestClient(service.app)
    assert_problem(
        client.post(f"/api/persons/{foreigner_code.generate()}/cards"), 401, "authentication-failed"
    )


# --- found in review: lock order, stuck rows, restarts, full lists ---------------------------


def test_a_second_round_never_waits_while_holding_the_audit_chain(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch naming one person twice writes its second round after the first; the audit
    head is taken once, at the end. It used to be taken by the first round: a single issuance
    that inserted a clashing key and then waited for the head closed a circle (PostgreSQL
    found the deadlock after a second and failed the single issuance)."""
    if service.backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: no row locks to wait for in a circle")
    registrar = service.actor("registrar")
    first, other = service.entitled(2)
    key = f"clash-{first}"
    between_rounds, single_at_audit = threading.Event(), threading.Event()
    real_round, real_append = issuing._issue_round, audit.append

    def round_then_wait(*args: Any, **kwargs: Any) -> Any:
        if between_rounds.is_set():  # the second round: let the single issuance go first
            assert single_at_audit.wait(timeout=20)
            time.sleep(0.3)  # it now waits for whatever holds what it needs
        between_rounds.set()
        return real_round(*args, **kwargs)

    def append_and_tell(session: Session, **entry: Any) -> Any:
        if threading.current_thread().name == "single":
            single_at_audit.set()
        return real_append(session, **entry)

    monkeypatch.setattr(issuing, "_issue_round", round_then_wait)
    monkeypatch.setattr(audit, "append", append_and_tell)
    results: dict[str, Any] = {}

    def batch() -> None:
        requests = [IssueRequest(registrar, first), IssueRequest(registrar, first, key)]
        try:
            results["batch"] = many(service, requests)
        except Exception as exc:  # reported below
            results["batch"] = exc

    def single() -> None:
        assert between_rounds.wait(timeout=20)
        try:
            with session_scope(service.engine) as session:
                card = cards.issue(
                    session,
                    registrar,
                    other,
                    at=datetime.now(UTC),
                    context=service.context,
                    idempotency_key=key,
                )
                results["single"] = card.serial
        except Exception as exc:  # reported below
            results["single"] = exc

    threads = [threading.Thread(target=batch), threading.Thread(target=single, name="single")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert isinstance(results["single"], str), results["single"]
    outcomes = results["batch"]
    assert isinstance(outcomes, list), outcomes
    assert outcomes[0][1] is CardState.ACTIVE
    assert isinstance(outcomes[1], IdempotencyKeyReusedError)  # the single issuance won
    service.verify_chain()


def test_a_person_locked_elsewhere_holds_up_only_their_own_request(service: Service) -> None:
    if service.backend == "sqlite":
        pytest.skip("SQLite locks the whole database, not a person's row")
    officer_id = service.actor("registrar").officer_id
    first, stuck, free = service.entitled(3)
    clock = HeldClock()
    queue = queue_of(service, clock=clock, lock_timeout_s=0.3)
    with service.engine.connect() as holder:
        holder.execute(
            select(PersonRecord.id).where(PersonRecord.code == stuck).with_for_update()
        ).all()
        started = time.monotonic()
        try:  # "stuck" and "free" share a batch: it fails on the lock, then each goes alone
            futures = batched(
                queue,
                clock,
                CardAsked(officer_id, first),
                [CardAsked(officer_id, stuck), CardAsked(officer_id, free)],
            )
        finally:
            queue.close()
            holder.rollback()
    answers = [future.result() for future in futures]
    assert isinstance(answers[0].outcome, CardRecord)
    assert isinstance(answers[1].outcome, OperationalError)  # lock timeout, nothing written
    assert isinstance(answers[2].outcome, CardRecord)
    assert time.monotonic() - started < 20
    assert service.cards_of(stuck) == []
    assert len(service.cards_of(free)) == 1


def test_a_stopped_service_answers_503_and_takes_requests_again_after_a_restart(
    service: Service,
) -> None:
    code = service.entitled(1)[0]
    headers = service.headers("registrar")
    queue: IssuingQueue = service.app.state.issuing
    queue.close()
    try:
        refused = service.client.post(f"/api/persons/{code}/cards", headers=headers)
    finally:
        queue.open()
    assert_problem(refused, 503, "unavailable")
    assert service.cards_of(code) == []
    assert service.client.post(f"/api/persons/{code}/cards", headers=headers).status_code == 201


def test_free_indexes_give_up_when_the_list_has_fewer_places_than_cards(
    service: Service,
) -> None:
    with Session(service.engine) as session, pytest.raises(StatusListFullError):
        issuing._free_indexes(session, "no-such-list", 4, 5, avoid=set())
    with Session(service.engine) as session:
        assert sorted(issuing._free_indexes(session, "no-such-list", 4, 4, avoid=set())) == [
            0,
            1,
            2,
            3,
        ]


def test_two_service_instances_issue_for_the_same_persons_at_once(service: Service) -> None:
    """Two instances behind a load balancer, one PostgreSQL: each has its own queue and
    engine; requests for overlapping persons (some twice) all succeed, in any order, with one
    current card per person at the end and an intact audit chain."""
    if service.backend == "sqlite":
        pytest.skip("instances share PostgreSQL; SQLite is one process's database")
    officer_id = service.actor("registrar").officer_id
    codes = service.entitled(6)
    second_engine = make_engine(service.engine.url.render_as_string(hide_password=False))
    queues = [queue_of(service), IssuingQueue(second_engine, service.context)]
    plans = [
        [codes[0], codes[1], codes[2], codes[0], codes[3], codes[4]],
        [codes[2], codes[1], codes[4], codes[5], codes[2], codes[0]],
    ]
    start = threading.Barrier(2)
    futures: list[list[Future[Answer]]] = [[], []]

    def send(number: int) -> None:
        start.wait()
        for code in plans[number]:
            futures[number].append(queues[number].submit(CardAsked(officer_id, code)))
            time.sleep(0.002)

    try:
        threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        answers = [future.result(timeout=60) for sent in futures for future in sent]
    finally:
        for queue in queues:
            queue.close()
        second_engine.dispose()
    assert all(isinstance(a.outcome, CardRecord) for a in answers), [
        a.outcome for a in answers if not isinstance(a.outcome, CardRecord)
    ]
    asked = Counter(code for plan in plans for code in plan)
    for code in codes:
        rows = service.cards_of(code)
        assert len(rows) == asked[code]
        assert Counter(row.state for row in rows) == {
            CardState.ACTIVE: 1,
            **({CardState.SUPERSEDED: asked[code] - 1} if asked[code] > 1 else {}),
        }
    slots = [(r.list_id, r.status_index) for code in codes for r in service.cards_of(code)]
    assert len(set(slots)) == len(slots)
    service.verify_chain()
