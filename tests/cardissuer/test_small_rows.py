"""The ``person`` and ``card`` rows stay small: portraits and QR texts live apart.

Every search, list, duplicate check, state change and expiry sweep reads these rows; a
portrait or a card's text in them would make every one of those read several times more.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import LargeBinary, String, event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bench.population import PORTRAIT_BYTES, load
from cardissuer.core.db import make_engine, session_scope
from cardissuer.core.migrations import upgrade
from cardissuer.models import CardTextRecord, PersonCreate, PersonPortraitRecord, PersonRecord
from cardissuer.portrait import make_portrait
from cardissuer.services import blobs, issuing, registry
from tests.cardissuer.test_api_helpers import BACKENDS, Service, shared_service
from verifier import Reason

HOT_TABLES = ("person", "card")
SAMPLE_PHOTO = resources.files("cardissuer").joinpath("demo/sample-photo.jpg")
LARGEST_HOT_TEXT = 256
"""No text column of a hot table may hold more characters than this (a device key)."""


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def _large_columns(engine: Engine, table: str) -> list[str]:
    """The columns of ``table`` (as the database has it) that may hold a large value."""
    large = []
    for column in inspect(engine).get_columns(table):
        kind = column["type"]
        binary = isinstance(kind, LargeBinary) or str(kind) in ("BLOB", "BYTEA")
        unbounded = isinstance(kind, String) and (kind.length or 10**9) > LARGEST_HOT_TEXT
        if binary or unbounded:
            large.append(column["name"])
    return large


def test_the_hot_tables_hold_no_large_values(service: Service) -> None:
    assert {table: _large_columns(service.engine, table) for table in HOT_TABLES} == {
        "person": [],
        "card": [],
    }
    # ... and the values are where the readers look for them.
    with Session(service.engine) as session:
        assert session.exec(select(PersonPortraitRecord)).first() is not None  # the demo's
        assert session.exec(select(CardTextRecord)).first() is not None


def _select_list(statement: str) -> list[str]:
    match = re.match(r"\s*SELECT\s+(.*?)\s+FROM\s", statement, re.DOTALL | re.IGNORECASE)
    assert match is not None, statement
    return [part.strip() for part in match.group(1).split(",")]


def test_the_duplicate_check_reads_only_the_compared_columns(service: Service) -> None:
    body = service.person_body(family_name="MOHAMMED", given_names="ALI", nationality="EGY")
    code = service.register(**body)
    statements: list[str] = []

    def capture(*args: Any) -> None:
        statements.append(args[2])

    data = PersonCreate.model_validate(
        {
            **body,
            "family_name": "MUHAMMAD",
            "passport": {"number": "X99999", "issuing_country": "EGY"},
        }
    )
    event.listen(service.engine, "before_cursor_execute", capture)
    try:
        with Session(service.engine) as session:
            found = registry.find_duplicates(session, service.actor("registrar"), data)
    finally:
        event.remove(service.engine, "before_cursor_execute", capture)
    assert [candidate["code"] for candidate in found] == [code]
    scans = [s for s in statements if "birth_date" in s and "nationality" in s]
    assert len(scans) == 1, statements
    assert _select_list(scans[0]) == ["person.id", "person.name_key", "person.office_id"]
    # Every other read of a person is by primary key, for the candidates shown.
    others = [s for s in statements if re.search(r"FROM person\b", s) and s not in scans]
    assert all("person.id IN" in s for s in others), others


def _statements_of_batch(service: Service, codes: list[str]) -> list[str]:
    statements: list[str] = []

    def capture(*args: Any) -> None:
        statements.append(args[2])

    event.listen(service.engine, "before_cursor_execute", capture)
    try:
        with session_scope(service.engine) as session:
            issuing.issue_batch(
                session, service.actor("registrar"), codes, at=datetime.now(UTC),
                context=service.context,
            )  # fmt: skip
    finally:
        event.remove(service.engine, "before_cursor_execute", capture)
    return statements


def test_a_batch_reads_portraits_and_writes_texts_in_one_statement_each(
    service: Service,
) -> None:
    """Issuing 3 or 9 cards at once, each holder with a portrait: the portraits are read in one
    query and the texts written in one statement, whatever the batch's size; every card
    carries its holder's portrait and its stored text is the one signed."""
    portrait = make_portrait(SAMPLE_PHOTO.read_bytes()).data
    counts = []
    for size in (3, 9):
        codes = service.entitled(size)
        with session_scope(service.engine) as session:
            for code in codes:
                person_id = session.exec(
                    select(PersonRecord.id).where(PersonRecord.code == code)
                ).one()
                blobs.store_portrait(session, person_id or 0, portrait)
        statements = _statements_of_batch(service, codes)
        counts.append(
            (
                sum("person_portrait" in s for s in statements),
                sum("card_text" in s for s in statements),
            )
        )
        for code in codes:
            (record,) = service.cards_of(code)
            result = service.verifier().verify(
                service.text_of(record), service="hc", at=datetime.now(UTC)
            )
            assert result.reason is Reason.VALID
            assert result.portrait is not None
    assert counts == [(1, 1), (1, 1)]


def _plan(engine: Engine, query: Any) -> str:
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
            return "\n".join(str(row[-1]) for row in rows)
        rows = connection.exec_driver_sql(f"EXPLAIN {sql}").all()
        return "\n".join(str(row[0]) for row in rows)


@pytest.fixture
def loaded(database_url: str) -> Iterator[Engine]:
    """A migrated database of 3,000 persons (a fifth with a portrait), with statistics."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        load(engine, 3000, offices=2, portraits=0.2, qr_chars=300)
        if engine.dialect.name == "postgresql":  # the visibility map of an index-only scan
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE person")
        yield engine
    finally:
        engine.dispose()


def test_the_duplicate_check_is_answered_from_its_index_alone(loaded: Engine) -> None:
    with loaded.connect() as connection:
        nationality, birth = connection.exec_driver_sql(
            "SELECT nationality, birth_date FROM person ORDER BY id LIMIT 1"
        ).one()
    plan = _plan(loaded, registry.duplicate_candidates(nationality, birth))
    if loaded.dialect.name == "sqlite":
        assert "USING COVERING INDEX ix_person_duplicates" in plan, plan
    else:
        assert "Index Only Scan using ix_person_duplicates" in plan, plan
    with loaded.connect() as connection:
        sizes = connection.exec_driver_sql(
            "SELECT count(*), min(length(data)), max(length(data)) FROM person_portrait"
        ).one()
    assert sizes[0] > 0
    assert sizes[1] == sizes[2] == PORTRAIT_BYTES


def _search_objects(engine: Engine) -> list[tuple[str, str]]:
    """The person table's indexes and triggers, as the database describes them."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'person' ORDER BY name"
        else:
            query = (
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'person' ORDER BY 1"
            )
        return [(str(name), str(sql)) for name, sql in connection.exec_driver_sql(query).all()]


def _values(engine: Engine, query: str) -> dict[int, Any]:
    with engine.connect() as connection:
        return {int(key): value for key, value in connection.exec_driver_sql(query).all()}


def test_the_migration_moves_the_values_there_and_back(service: Service) -> None:
    """Down to ``0007`` and up again with persons, portraits and cards: every value is
    identical, and the person table keeps its search triggers and indexes."""
    from alembic import command

    from cardissuer.core import migrations

    service.with_card(("hc",))
    engine = service.engine
    portraits = _values(engine, "SELECT person_id, data FROM person_portrait")
    texts = _values(engine, "SELECT card_id, qr_text FROM card_text")
    objects = _search_objects(engine)
    assert portraits
    assert texts
    assert all(value for value in texts.values())

    config = migrations._config()
    engine.dispose()  # no pooled connection of the service in the way
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008_search_tiers")
    held = _values(engine, "SELECT id, portrait FROM person WHERE portrait IS NOT NULL")
    assert {key: bytes(value) for key, value in held.items()} == portraits
    assert _values(engine, "SELECT id, qr_text FROM card") == texts

    migrations.upgrade(engine)
    assert {
        key: bytes(value)
        for key, value in _values(engine, "SELECT person_id, data FROM person_portrait").items()
    } == portraits
    assert _values(engine, "SELECT card_id, qr_text FROM card_text") == texts
    assert _search_objects(engine) == objects
    assert _large_columns(engine, "person") == _large_columns(engine, "card") == []
    # The search still sees a person registered after the migration.
    code = service.register(family_name="QUETZALCOATL")
    found = service.client.get(
        "/api/persons", params={"q": "quetzalcoatl"}, headers=service.headers("registrar")
    )
    assert found.status_code == 200, found.text
    assert [person["code"] for person in found.json()["items"]] == [code]


def test_the_loader_without_portraits_keeps_its_figures(tmp_path: Path) -> None:
    """The measured registry of the benchmarks stays the same without the new options."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        upgrade(engine)
        population = load(engine, 200, offices=1, analyze=False)
        with engine.connect() as connection:
            portraits = connection.execute(text("SELECT count(*) FROM person_portrait")).scalar()
            cards = connection.execute(text("SELECT count(*) FROM card_text")).scalar()
    finally:
        engine.dispose()
    assert (portraits, cards) == (0, population.cards)
