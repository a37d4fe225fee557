"""The status journal: every path that changes a card's status reaches the published list.

The published list is made from the packed statuses and their journal, never from the cards;
these tests compare it with a recomputation from the cards after a random mix of every
operation that changes a card, so a path that forgets the journal fails here.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlmodel import Session, col, select

from cardissuer.core.db import sqlite_path
from cardissuer.errors import ConflictError
from cardissuer.models import (
    CardRecord,
    CardState,
    GrantCreate,
    GrantRecord,
    PersonRecord,
    StatusChangeRecord,
    StatusListRecord,
)
from cardissuer.services import cards, issuing, statuses
from cardissuer.services.publishing import Publisher
from keys.jws import VerificationKey
from keys.status_list import CardStatus, read_status_list
from tests.cardissuer.test_api_helpers import BACKENDS, Service, shared_service

CATALOGUE = ("hc", "ed")


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def own_publisher(service: Service) -> Publisher:
    shared: Publisher = service.app.state.publisher
    return Publisher(
        signer=shared.signer,
        status_uri_prefix=shared.status_uri_prefix,
        validity=shared.validity,
        published_dir=shared.published_dir,
    )


def published_bytes(service: Service, publisher: Publisher, list_id: str) -> bytes:
    keys = [VerificationKey(kid, key) for key, kid in service.app.state.public_keys]
    with Session(service.engine) as session:
        token = publisher.status_list(session, list_id, at=datetime.now(UTC)).body.decode()
        session.commit()
    return read_status_list(token, keys=keys).statuses.to_bytes()


def recomputed(service: Service, list_id: str) -> bytes:
    with Session(service.engine) as session:
        size, bits = session.exec(
            select(StatusListRecord.size, StatusListRecord.bits).where(
                StatusListRecord.list_id == list_id
            )
        ).one()
        return statuses.recompute(session, list_id, size=size, bits=bits)


def _operate(service: Service, rng: random.Random, codes: list[str], at: datetime) -> str:
    """One random operation that may change a card's status; its name."""
    registrar, supervisor = service.actor("registrar"), service.actor("supervisor")
    context = service.context
    name = rng.choice(
        ["issue", "issue", "batch", "suspend", "reinstate", "revoke", "grant", "expire"]
    )
    with Session(service.engine) as session:
        try:
            if name == "issue":
                cards.issue(session, registrar, rng.choice(codes), at=at, context=context)
            elif name == "batch":
                chosen = rng.sample(codes, 3)
                issuing.issue_batch(session, registrar, chosen, at=at, context=context)
            elif name in ("suspend", "reinstate", "revoke"):
                serial = rng.choice(_current_serials(session, codes))
                target = {
                    "suspend": CardState.SUSPENDED,
                    "reinstate": CardState.ACTIVE,
                    "revoke": CardState.REVOKED,
                }[name]
                cards.change_state(session, supervisor, serial, target, at=at, reason="r")
            elif name == "grant":  # re-issues the current card, a suspended one suspended
                code = rng.choice(codes)
                held = _second_grant(session, code)
                if held is None:
                    cards.grant(
                        session,
                        registrar,
                        code,
                        GrantCreate(service="ed"),
                        at=at,
                        catalogue=CATALOGUE,
                        context=context,
                    )
                else:
                    cards.withdraw(session, registrar, code, held, at=at, context=context)
            else:  # expiry, also of suspended cards (their status becomes valid)
                serial = rng.choice(_current_serials(session, codes))
                session.execute(
                    update(CardRecord)
                    .where(col(CardRecord.serial) == serial)
                    .values(expires_at=at - timedelta(days=1))
                )
                cards.expire_cards(session, at=at)
            session.commit()
        except ConflictError:  # e.g. reinstating an active card, issuing over a suspended one
            session.rollback()
            return f"{name} (refused)"
    return name


def _current_serials(session: Session, codes: list[str]) -> list[str]:
    found = session.exec(
        select(CardRecord.serial)
        .join(PersonRecord, col(PersonRecord.id) == col(CardRecord.person_id))
        .where(col(PersonRecord.code).in_(codes), col(CardRecord.state).in_(cards.CURRENT_STATES))
        .order_by(col(CardRecord.serial))
    ).all()
    return list(found) or ["NOCARD"]


def _second_grant(session: Session, code: str) -> int | None:
    return session.exec(
        select(GrantRecord.id)
        .join(PersonRecord, col(PersonRecord.id) == col(GrantRecord.person_id))
        .where(
            PersonRecord.code == code,
            GrantRecord.service == "ed",
            col(GrantRecord.withdrawn_at).is_(None),
        )
    ).first()


def test_the_published_list_equals_the_cards_after_a_random_mix_of_changes(
    service: Service,
) -> None:
    rng = random.Random(20261205)
    codes = service.entitled(8)
    publisher = own_publisher(service)
    at = datetime.now(UTC).replace(microsecond=0)
    done: list[str] = []
    for step in range(60):
        done.append(_operate(service, rng, codes, at))
        if step % 6 == 5:
            with Session(service.engine) as session:
                list_ids = session.exec(select(CardRecord.list_id).distinct()).all()
            for list_id in list_ids:
                assert published_bytes(service, publisher, list_id) == recomputed(
                    service, list_id
                ), done
    kinds = {name.split()[0] for name in done if "refused" not in name}
    assert kinds >= {"issue", "batch", "suspend", "reinstate", "revoke", "grant", "expire"}


def test_a_card_issued_suspended_is_published_suspended(service: Service) -> None:
    """Adding a service to a person whose card is suspended issues a suspended card."""
    code, card = service.with_card(("hc",))
    supervisor = service.headers("supervisor")
    service.client.post(f"/api/cards/{card['serial']}/suspend", headers=supervisor, json={})
    assert service.client.post(
        f"/api/persons/{code}/grants",
        headers=service.headers("registrar"),
        json={"service": "ed"},
    ).is_success
    old, new = service.cards_of(code)[-2:]
    assert (old.state, new.state) == (CardState.SUPERSEDED, CardState.SUSPENDED)
    published = published_bytes(service, own_publisher(service), new.list_id)
    positions = {old.status_index: CardStatus.SUPERSEDED, new.status_index: CardStatus.SUSPENDED}
    for index, status in positions.items():
        assert (published[index * 2 // 8] >> (index * 2 % 8)) & 3 == status


def test_a_write_past_the_journal_is_found_and_repaired_by_rebuild(service: Service) -> None:
    """A statement that bypasses the ORM is not journalled: ``rebuild`` finds and repairs it."""
    _, card = service.with_card(("hc",))
    publisher = own_publisher(service)
    with Session(service.engine) as session:
        record = session.exec(select(CardRecord).where(CardRecord.serial == card["serial"])).one()
        list_id = record.list_id
        session.execute(
            update(CardRecord)
            .where(col(CardRecord.id) == record.id)
            .values(state=CardState.REVOKED)
        )
        session.commit()
    assert published_bytes(service, publisher, list_id) != recomputed(service, list_id)
    with Session(service.engine) as session:
        assert statuses.rebuild(session) == [list_id]
        session.commit()
    assert published_bytes(service, publisher, list_id) == recomputed(service, list_id)
    with Session(service.engine) as session:
        assert statuses.rebuild(session) == []


def test_the_migration_computes_the_statuses_of_existing_cards(service: Service) -> None:
    """Upgrading from ``0004`` with cards of every status: the stored statuses equal a
    recomputation from the cards, and the list is signed again from them."""
    from alembic import command

    from cardissuer.core import migrations

    code, _ = service.with_card(("hc",))
    supervisor = service.headers("supervisor")
    service.client.post(f"/api/persons/{code}/cards", headers=supervisor)  # supersedes
    _, other = service.with_card(("hc",))
    service.client.post(f"/api/cards/{other['serial']}/suspend", headers=supervisor, json={})
    _, third = service.with_card(("hc",))
    service.client.post(
        f"/api/cards/{third['serial']}/revoke", headers=supervisor, json={"reason": "r"}
    )
    config = migrations._config()
    service.engine.dispose()  # no pooled connection of the service in the way
    with service.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006_phone_cards")
    migrations.upgrade(service.engine)
    with Session(service.engine) as session:
        lists = session.exec(select(StatusListRecord)).all()
        assert lists
        for record in lists:
            assert record.statuses == statuses.recompute(
                session, record.list_id, size=record.size, bits=record.bits
            )
        assert session.exec(select(StatusChangeRecord)).first() is None
    list_id = service.cards_of(code)[0].list_id
    assert published_bytes(service, own_publisher(service), list_id) == recomputed(service, list_id)


def test_a_batching_publisher_signs_waiting_changes_once_the_batch_time_is_over(
    service: Service,
) -> None:
    shared: Publisher = service.app.state.publisher
    publisher = Publisher(
        signer=shared.signer,
        status_uri_prefix=shared.status_uri_prefix,
        validity=shared.validity,
        published_dir=shared.published_dir,
        batch=timedelta(seconds=10),
    )
    _, card = service.with_card(("hc",))
    with Session(service.engine) as session:
        record = session.exec(select(CardRecord).where(CardRecord.serial == card["serial"])).one()
        list_id, index = record.list_id, record.status_index
    # Past the held list's freshness: this publisher signs at ``at`` first.
    at = datetime.now(UTC).replace(microsecond=0) + publisher.validity
    with Session(service.engine) as session:
        signed = publisher.status_list(session, list_id, at=at)
        session.commit()
        cards.change_state(
            session,
            service.actor("supervisor"),
            card["serial"],
            CardState.REVOKED,
            at=at,
            reason="r",
        )
        session.commit()
        waiting = publisher.status_list(session, list_id, at=at + timedelta(seconds=9))
        later = publisher.status_list(session, list_id, at=at + timedelta(seconds=10))
        session.commit()
    assert waiting is signed
    keys = [VerificationKey(kid, key) for key, kid in service.app.state.public_keys]
    assert read_status_list(later.body.decode(), keys=keys).statuses[index] == CardStatus.REVOKED


@pytest.mark.parametrize(
    ("path", "conditional"),
    [("/status/1", False), ("/status/1", True), ("/bundle.json", False), ("/bundle.json", True)],
    ids=["status", "status-304", "bundle", "bundle-304"],
)
def test_serving_a_list_or_the_bundle_never_reads_the_cards(
    service: Service, path: str, conditional: bool
) -> None:
    """Counters' requests cost a query of the list rows, whatever the number of cards:
    after a change, too (the change is applied from the journal)."""
    _, card = service.with_card(("hc",))
    first = service.client.get(path)
    service.client.post(
        f"/api/cards/{card['serial']}/suspend", headers=service.headers("supervisor"), json={}
    )
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(service.engine, "before_cursor_execute", record)
    try:
        headers = {"If-None-Match": first.headers["etag"]} if conditional else {}
        changed = service.client.get(path, headers=headers)
        again = service.client.get(path, headers={"If-None-Match": changed.headers["etag"]})
    finally:
        event.remove(service.engine, "before_cursor_execute", record)
    assert changed.status_code == 200
    assert again.status_code == 304
    assert statements
    assert not [s for s in statements if re.search(r"\bcard\b", s.lower())], statements


@pytest.mark.parametrize("path", ["/status/1", "/bundle.json"])
def test_counters_are_served_while_a_writer_holds_sqlite(service: Service, path: str) -> None:
    """Held documents are read in a deferred transaction: counters syncing never queue for
    SQLite's write lock (held by issuance), nor hold it."""
    if service.backend != "sqlite":
        pytest.skip("PostgreSQL's readers never wait for writers")
    service.with_card(("hc",))
    assert service.client.get(path).status_code == 200  # signs what is waiting
    database = sqlite_path(service.app.state.settings.database_url)
    assert database is not None
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # as an issuance in progress
        started = time.perf_counter()
        response = service.client.get(path)
        waited = time.perf_counter() - started
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert response.status_code == 200
    assert waited < 5, f"waited {waited:.1f} s for the write lock"


def test_changes_applied_by_rebuild_are_signed_at_the_next_request(service: Service) -> None:
    """``rebuild`` applies the waiting journal too: the held list must not outlive it."""
    _, card = service.with_card(("hc",))
    publisher = own_publisher(service)
    with Session(service.engine) as session:
        record = session.exec(select(CardRecord).where(CardRecord.serial == card["serial"])).one()
        list_id = record.list_id
    published_bytes(service, publisher, list_id)  # the list is held, nothing waits
    revoked = service.client.post(
        f"/api/cards/{card['serial']}/revoke",
        headers=service.headers("supervisor"),
        json={"reason": "r"},
    )
    assert revoked.status_code == 200, revoked.text
    with Session(service.engine) as session:
        assert statuses.rebuild(session) == []  # the journal held the change: nothing differed
        session.commit()
    assert published_bytes(service, publisher, list_id) == recomputed(service, list_id)
