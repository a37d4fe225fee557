# ruff: noqa: RUF001, RUF003 - names in other scripts and their look-alike letters are the point.
"""The person search and list: what they find, in which order, for whom, a page at a time,
and that each database answers them from indexes (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from bench.population import RARE_CHINESE_NAME, Population, load
from cardissuer import cli
from cardissuer.core.config import Settings
from cardissuer.core.db import create_schema, make_engine, optimize
from cardissuer.core.migrations import upgrade
from cardissuer.main import create_app
from cardissuer.models import CardRecord, CardState, OfficerRecord, PersonRecord
from cardissuer.services import search, search_key
from cardissuer.services.access import Actor
from cardissuer.services.cards import current_cards_of, expire_cards
from cardissuer.services.officers import actor_of
from cardissuer.services.registry import name_key
from schemas import code as foreigner_code
from tests.cardissuer.conftest import login_headers
from tests.cardissuer.test_api_helpers import copy_database, database

AT = datetime(2026, 12, 1, tzinfo=UTC)
TABLES = SQLModel.metadata.tables


@dataclass
class Registry:
    engine: Engine
    population: Population
    registrar: Actor  # office 0
    other_registrar: Actor  # office 1
    auditor: Actor  # every office

    def find(self, actor: Actor, q: str, **options: Any) -> search.SearchResult:
        with Session(self.engine) as session:
            return search.search_persons(
                session, actor, q, limit=options.pop("limit", 50), **options
            )

    def names(self, actor: Actor, q: str, **options: Any) -> list[str]:
        return [p.family_name for p in self.find(actor, q, **options).persons]

    def add(self, family: str, given: str = "", *, office: int = 0, **names: str | None) -> int:
        """A person of office ``office`` (an index into the offices), straight into the table
        (the search triggers see it as they see a registration)."""
        with self.engine.begin() as connection:
            result = connection.execute(
                TABLES["person"].insert(),
                {
                    "code": _new_code(),
                    "office_id": self.population.offices[office],
                    "family_name": family,
                    "given_names": given,
                    "native_name": names.get("native"),
                    "chinese_name": names.get("chinese"),
                    "name_key": name_key(family, given),
                    "nationality": "CHN",
                    "birth_date": 19800101,
                    "sex": "X",
                    "created_at": AT,
                    "created_by": self.population.officers[office],
                    "updated_at": AT,
                },
            )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def _new_code() -> str:
    return foreigner_code.generate()  # 45 random bits: no collision in a test's registry


def _actor(session: Session, username: str) -> Actor:
    return actor_of(
        session.exec(select(OfficerRecord).where(OfficerRecord.username == username)).one()
    )


def _registry(
    database_url: str, persons: int, *, analyze: bool = True, loaded: Loaded | None = None
) -> Iterator[Registry]:
    """A registry of ``persons`` persons at ``database_url``: loaded there, or (``loaded``)
    copied from the module's loaded registry of that size, the same rows and statistics."""
    if loaded is not None:
        assert analyze
        source, loaded_population = loaded.registry(database_url, persons)
        copy_database(source, database_url)
    engine = make_engine(database_url)
    try:
        if loaded is None:
            upgrade(engine)
            population = load(engine, persons, offices=3, analyze=analyze)
        else:
            population = copy.deepcopy(loaded_population)
        with Session(engine) as session:
            actors = [
                _actor(session, f"bench.{name}") for name in ("registrar0", "registrar1", "auditor")
            ]
        yield Registry(engine, population, *actors)
    finally:
        engine.dispose()


class Loaded:
    """Registries loaded once per module, backend and size, for the tests to copy (a copy
    takes a fraction of a second, the load seconds); each test still has its own database."""

    def __init__(self, directory: Path, stack: ExitStack) -> None:
        self.directory = directory
        self.stack = stack
        self.made: dict[tuple[str, int], tuple[str, Population]] = {}

    def registry(self, like: str, persons: int) -> tuple[str, Population]:
        backend = "sqlite" if like.startswith("sqlite") else "postgresql"
        if (backend, persons) not in self.made:
            directory = self.directory / f"{backend}-{persons}"
            directory.mkdir()
            url = self.stack.enter_context(database(backend, directory))
            engine = make_engine(url)
            try:
                upgrade(engine)
                self.made[backend, persons] = url, load(engine, persons, offices=3)
            finally:
                engine.dispose()
        return self.made[backend, persons]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    with ExitStack() as stack:
        yield Loaded(tmp_path_factory.mktemp("loaded"), stack)


@pytest.fixture
def registry(database_url: str, loaded: Loaded) -> Iterator[Registry]:
    """A small registry (300 persons in 3 offices) with known persons added by each test."""
    yield from _registry(database_url, 300, loaded=loaded)


# --- what is found ----------------------------------------------------------------------------


def test_names_are_found_in_every_script_and_letter_case(registry: Registry) -> None:
    registry.add("AL-ZUBAYDI", "HAMZA", native="حمزة الزبيدي")
    registry.add("VOROBYOVA", "ANNA", native="Воробьёва Анна")
    registry.add("OUYANG", "XIU", chinese="欧阳修远")
    registry.add("YOON", "SEOJUN", native="윤서준")
    auditor = registry.auditor
    assert registry.names(auditor, "zubay") == ["AL-ZUBAYDI"]  # Latin, any case, substring
    assert registry.names(auditor, "الزبيدي") == ["AL-ZUBAYDI"]  # Arabic
    assert registry.names(auditor, "воробьёва") == ["VOROBYOVA"]  # Cyrillic, other case
    assert registry.names(auditor, "阳修远") == ["OUYANG"]  # Chinese, inside the name
    assert registry.names(auditor, "윤서준") == ["YOON"]  # Hangul
    assert registry.names(auditor, "ANNA VOROBYOVA") == []  # the words in another order
    assert registry.names(auditor, "VOROBYOVA ANNA") == ["VOROBYOVA"]  # the full name


def test_one_or_two_characters_match_the_start_of_a_name(registry: Registry) -> None:
    """Too short for trigrams: the family, Chinese and native names' first characters."""
    registry.add("ZHUGE", "LIANG", chinese="诸葛亮")
    registry.add("ZHUGE", "", chinese="诸葛")
    registry.add("ZHUGE", "JIN", chinese="诸葛瑾")
    registry.add("HUANG", "ZHUGE", chinese="黄诸葛")  # inside, not at the start
    registry.add("YOON", "SEOJUN", native="윤서준")
    assert sorted(str(c) for c in _chinese(registry, "诸葛")) == ["诸葛", "诸葛亮", "诸葛瑾"]
    assert _chinese(registry, "诸葛")[0] == "诸葛"  # the equal name first
    assert [p.native_name for p in registry.find(registry.auditor, "윤").persons] == ["윤서준"]
    found = registry.names(registry.auditor, "li")
    assert found
    assert all(name.startswith("LI") for name in found)  # LI, LIN, LIU; not WILLIAMS


def test_a_name_starting_with_a_non_ascii_letter_is_found_by_its_letters(
    registry: Registry,
) -> None:
    """A family name that starts with Ç or Ö is found by its first letters as printed, and
    as typed without the accent (which also finds the names starting with C or O)."""
    registry.add("ÇELIK", "AYSE")
    registry.add("ÖZTÜRK", "MEHMET")
    for q in ("ÇE", "Çe", "ÇELIK", "ce", "celik"):
        assert registry.names(registry.auditor, q) == ["ÇELIK"], q
    for q in ("ÖZ", "Öz", "oz", "ozturk"):
        assert registry.names(registry.auditor, q) == ["ÖZTÜRK"], q
    for q, name in (("Ç", "ÇELIK"), ("Ö", "ÖZTÜRK")):
        found = registry.names(registry.auditor, q)
        assert name in found, q
        assert all(
            search_key.fold(found_name).startswith(search_key.fold(q)) for found_name in found
        )


# (column, name as registered, text typed): the search must find the person.
FOLDED_MATCHES = [
    ("family", "Çelik", "ÇELİK"),
    ("family", "Çelik", "celik"),
    ("family", "Çelik", "CELIK"),
    ("family", "ÇELİK", "Çelik"),
    ("family", "İnci", "inci"),
    ("family", "İnci", "INCI"),
    ("family", "Alı", "ALI"),  # dotless ı reads i: recall before precision (search_key)
    ("family", "Straße", "STRASSE"),
    ("family", "Gómez-Muñoz", "gomez munoz"),
    ("family", "Łukasiewicz", "LUKASIE"),
    ("family", "Đorđević", "dordev"),
    ("family", "Nguyễn", "NGUYEN"),
    ("family", "O'Brien", "obrien"),
    ("family", "QUÉRÉ", "ｑｕｅｒｅ"),  # full-width, as a Chinese input method types it
    ("native", "Σωκράτης", "ΣΩΚΡΑΤΗΣ"),
    ("native", "Άννα Παπαδοπούλου", "αννα"),
    ("native", "Семён Воробьёв", "воробьев"),
    ("native", "أحمد الزهراني", "احمد"),
    ("native", "إبراهيم", "ابراهيم"),
    ("native", "آمنة", "امنه"),
    ("native", "مصطفى", "مصطفي"),
    ("native", "علی رضایی", "علي رضايي"),
    ("native", "کریم", "كريم"),
    ("native", "مُحَمَّد", "محمد"),
    ("native", "عبد الرحمـــن", "عبد الرحمن"),
    ("chinese", "欧阳修远", "欧阳修远"),
]
# (column, name as registered, text typed): the search must not find the person.
FOLDED_MISSES = [
    ("family", "Müller", "mueller"),
    ("family", "Çelik", "celikyurt"),
    ("family", "Straße", "strase"),
    ("family", "Ørsted", "oersted"),
    ("native", "Иванов", "ivanov"),
    ("native", "محمد", "محمود"),
]


def test_names_are_found_whatever_their_case_accents_and_letter_variants(
    registry: Registry,
) -> None:
    """Each pair on its own person: the person registered under the name is among what the
    typed text finds (or, for the misses, is not)."""
    ids = {}
    for column, registered, _ in FOLDED_MATCHES + FOLDED_MISSES:
        if (column, registered) not in ids:
            if column == "family":
                ids[column, registered] = registry.add(registered, "FOLDTEST")
            else:
                native, chinese = (registered, None) if column == "native" else (None, registered)
                ids[column, registered] = registry.add(
                    "FOLDTEST", "", native=native, chinese=chinese
                )
    wrong = []
    for column, registered, q in FOLDED_MATCHES:
        found = [p.id for p in registry.find(registry.auditor, q, limit=1000).persons]
        if ids[column, registered] not in found:
            wrong.append(("not found", registered, q))
    for column, registered, q in FOLDED_MISSES:
        found = [p.id for p in registry.find(registry.auditor, q, limit=1000).persons]
        if ids[column, registered] in found:
            wrong.append(("found", registered, q))
    assert wrong == []


def test_an_equal_folded_name_ranks_first_then_prefixes_then_the_rest(registry: Registry) -> None:
    celik = registry.add("Çelik", "AYŞE")
    longer = registry.add("CELIKYURT", "MEHMET")  # newer, starts with the text
    inside = registry.add("ÖZÇELİK", "ALİ")  # newest, contains it
    for q in ("ÇELİK", "Çelik", "celik", "CELIK", "çelık"):
        assert [p.id for p in registry.find(registry.auditor, q).persons] == [
            celik,
            longer,
            inside,
        ], q
    full = registry.find(registry.auditor, "celik ayse")  # the full name, folded
    assert [p.id for p in full.persons] == [celik]


def test_the_api_finds_a_registered_name_by_any_spelling(client: TestClient) -> None:
    """Registered through the API as the console writes it (capitals, Turkish İ), found
    through the API by what an officer types."""
    headers = login_headers(client, "registrar")
    body = {
        "family_name": "ÇELİK",
        "given_names": "AYŞE",
        "nationality": "TUR",
        "birth_date": "1987-03-04",
        "sex": "F",
        "passport": {"number": "U12345678", "issuing_country": "TUR"},
    }
    registered = client.post("/api/persons", headers=headers, json=body)
    assert registered.status_code == 201, registered.text
    code = registered.json()["code"]
    arab = {
        **body,
        "family_name": "AL-ZAHRANI",
        "given_names": "AMINA",
        "native_name": "آمنة الزهراني",
        "nationality": "SAU",
        "passport": {"number": "S12345678", "issuing_country": "SAU"},
    }
    registered = client.post("/api/persons", headers=headers, json=arab)
    assert registered.status_code == 201, registered.text
    arab_code = registered.json()["code"]

    def found(q: str) -> list[str]:
        response = client.get("/api/persons", headers=headers, params={"q": q})
        assert response.status_code == 200, response.text
        return [item["code"] for item in response.json()["items"]]

    for q in ("ÇELİK", "Çelik", "celik", "CELIK", "ÇELIK", "çelik ayşe", "CELIK AYSE", "elik"):
        assert found(q) == [code], q
    for q in ("امنه الزهراني", "آمنة", "ZAHRANI", "al zahrani", "Al-Zahrânî"):
        assert found(q) == [arab_code], q
    for q in ("celikyurt", "mueller", "امينة"):
        assert found(q) == [], q


def _chinese(registry: Registry, q: str) -> list[str | None]:
    return [p.chinese_name for p in registry.find(registry.auditor, q).persons]


def test_equal_names_come_first_then_prefixes_then_the_rest(registry: Registry) -> None:
    registry.add("BERG", "LI")
    registry.add("OSTBERG", "IVAN")  # newest, but only contains the text
    registry.add("BERGMAN", "LONG")
    registry.add("BERG", "MEI")
    assert registry.names(registry.auditor, "berg") == ["BERG", "BERG", "BERGMAN", "OSTBERG"]


def test_identifiers_are_answered_alone_and_first(registry: Registry) -> None:
    population = registry.population
    with Session(registry.engine) as session:
        person = session.exec(select(PersonRecord).order_by(col(PersonRecord.id))).first()
        assert person is not None
        card = session.exec(
            select(CardRecord).where(
                CardRecord.person_id == person.id, CardRecord.state == CardState.ACTIVE
            )
        ).one()
    code, passport, serial = person.code, f"E{person.id:08d}", card.serial
    assert population.persons
    for q in (code, f"{code[:5].lower()} {code[5:]}", passport, passport.lower(), serial):
        found = registry.find(registry.auditor, q)
        assert [p.id for p in found.persons] == [person.id], q
        assert (found.total, found.total_capped, found.next_cursor) == (1, False, None)


def test_an_officer_finds_only_their_office_by_name_or_identifier(registry: Registry) -> None:
    mine = registry.add("ZYXWORTH", "ONE", office=0)
    theirs = registry.add("ZYXWORTH", "TWO", office=1)
    with Session(registry.engine) as session:
        their_code = session.get(PersonRecord, theirs).code  # type: ignore[union-attr]
    assert [p.id for p in registry.find(registry.registrar, "zyxworth").persons] == [mine]
    assert [p.id for p in registry.find(registry.other_registrar, "zyxworth").persons] == [theirs]
    assert [p.id for p in registry.find(registry.auditor, "zyxworth").persons] == [theirs, mine]
    hidden = registry.find(registry.registrar, their_code)  # as if the code did not exist
    assert (hidden.persons, hidden.total) == ([], 0)
    listed = registry.find(registry.registrar, "", limit=1000)
    assert {p.office_id for p in listed.persons} == {registry.population.offices[0]}
    assert len(registry.find(registry.auditor, "", limit=1000).persons) > len(listed.persons)


@pytest.mark.parametrize(
    "q", ["%", "_", "\\", '"', 'a" OR "b', "x* OR y*", "NEAR(a b)", "^AB", "%%%"]
)
def test_the_text_is_literal_never_a_pattern_or_a_query(registry: Registry, q: str) -> None:
    """LIKE wildcards and FTS5 syntax in the text are searched as characters."""
    registry.add("SAFE", "NAME")
    assert registry.find(registry.auditor, q).persons == []


# --- the indexes stay in step -----------------------------------------------------------------


def test_renamed_and_deleted_persons_are_found_by_their_new_names_only(registry: Registry) -> None:
    """A name changed through the model gets its new search key in the same UPDATE."""
    person = registry.add("QUIXOTE", "ALONSO", chinese="吉诃德先生")
    with Session(registry.engine) as session:
        record = session.get(PersonRecord, person)
        assert record is not None
        record.family_name, record.chinese_name = "QUIJÁNO", "吉哈诺先生"
        session.add(record)
        session.commit()
        session.refresh(record)
        assert (record.folded_family, record.folded_given) == ("quijano", "alonso")
    assert registry.names(registry.auditor, "quixote") == []
    assert registry.names(registry.auditor, "诃德先") == []
    assert registry.names(registry.auditor, "quijano") == ["QUIJÁNO"]
    assert registry.names(registry.auditor, "UIJAN") == ["QUIJÁNO"]
    assert registry.names(registry.auditor, "哈诺先") == ["QUIJÁNO"]
    with registry.engine.begin() as connection:
        connection.execute(TABLES["person"].delete().where(TABLES["person"].c.id == person))
    assert registry.names(registry.auditor, "quijano") == []


def test_rebuild_search_restores_a_lost_index_and_changes_no_schema(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.add("REBUILDSON", "ANNA", chinese="重建测试")
    stale = registry.add("ÇELİKBAŞ", "ANNA")
    before = _schema(registry.engine)
    with registry.engine.begin() as connection:  # a key made by an older fold
        connection.execute(
            TABLES["person"]
            .update()
            .where(TABLES["person"].c.id == stale)
            .values(folded_family="ÇELİKBAŞ")
        )
    assert registry.names(registry.auditor, "celikbas") == []
    with registry.engine.begin() as connection:  # the index is lost
        if registry.engine.dialect.name == "postgresql":
            connection.execute(text("DROP INDEX ix_person_search_trgm"))
        else:
            connection.execute(
                text("INSERT INTO person_search(person_search) VALUES ('delete-all')")
            )
    if registry.engine.dialect.name == "sqlite":  # a substring needs the trigram index
        assert registry.names(registry.auditor, "ebuildso") == []
        assert registry.names(registry.auditor, "rebuildson") == ["REBUILDSON"]  # B-tree
    monkeypatch.setenv("FMCARD_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv(
        "FMCARD_DATABASE_URL", registry.engine.url.render_as_string(hide_password=False)
    )
    assert cli.main(["db", "rebuild-search"]) == 0
    out = capsys.readouterr().out
    assert "search indexes rebuilt over 302 person(s), search keys recomputed for 1" in out
    assert registry.names(registry.auditor, "celikbas") == ["ÇELİKBAŞ"]
    assert registry.names(registry.auditor, "ebuildso") == ["REBUILDSON"]
    assert registry.names(registry.auditor, "建测试") == ["REBUILDSON"]
    assert _schema(registry.engine) == before


def _schema(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            query = (
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'person' ORDER BY 1"
            )
        else:
            query = (
                "SELECT type, name, sql FROM sqlite_master "
                "WHERE name NOT LIKE 'sqlite_stat%' ORDER BY 2"
            )
        return [tuple(row) for row in connection.execute(text(query))]


# --- counting and pages -----------------------------------------------------------------------


def test_counting_stops_at_the_cap(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "COUNT_CAP", 5)
    for given in "ABCDEFG":
        registry.add("CAPWELL", given)
    assert (
        registry.find(registry.auditor, "capwell").total,
        registry.find(registry.auditor, "capwell").total_capped,
    ) == (5, True)
    few = registry.find(registry.auditor, "capwell a")
    assert (few.total, few.total_capped) == (1, False)


def test_names_starting_with_the_text_come_in_name_order_each_person_once(
    registry: Registry,
) -> None:
    """The prefix rank in its index's order (key, then oldest first), across the family,
    Chinese and native names; a person two of whose names start with the text stands once,
    at the first in key order, on whichever page that falls."""
    hassani = registry.add("HASSANI", "OLD")
    both = registry.add("HASSANOV", "B", native="Hassanbek Hassanov")  # family and native
    hassan_1 = registry.add("HASSAN", "A")
    native = registry.add("SMITH", "N", native="Hassana Smith")
    hassan_2 = registry.add("HASSAN", "C")
    order = [hassan_1, hassan_2, native, both, hassani]
    # hassan, hassan, hassana smith, hassanbek hassanov (< hassani), hassani
    assert [p.id for p in registry.find(registry.auditor, "hassa").persons] == order
    for limit in (1, 2, 3):
        seen: list[int | None] = []
        cursor = None
        while True:
            page = registry.find(registry.auditor, "hassa", limit=limit, cursor=cursor)
            seen += [p.id for p in page.persons]
            assert page.total == len(order)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == order, limit


def test_a_prefix_cursor_without_its_key_resumes_at_the_persons_name(registry: Registry) -> None:
    """A cursor naming the rank and id alone (as before the prefix rank was in name order)
    resumes after that person's place; one naming a person outside the rank is refused."""
    ids = [registry.add(family, "X") for family in ("ZORBAC", "ZORBAB", "ZORBAA", "ZORBAD")]
    found = [p.id for p in registry.find(registry.auditor, "zorba").persons]
    assert found == [ids[2], ids[1], ids[0], ids[3]]

    def bare(rank: int, person: int) -> str:
        raw = f"{rank}.{person}.{search._digest('zorba')}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    page = registry.find(registry.auditor, "zorba", cursor=bare(2, ids[1]))
    assert [p.id for p in page.persons] == [ids[0], ids[3]]
    stranger = registry.add("OTHER", "Y")
    with pytest.raises(search.InvalidCursorError):
        registry.find(registry.auditor, "zorba", cursor=bare(2, stranger))


@pytest.mark.parametrize("q", ["", "hassan", "王"])
def test_pages_by_cursor_are_the_whole_list_and_ignore_new_registrations(
    registry: Registry, q: str
) -> None:
    for _ in range(12):
        registry.add("HASSAN", "OMAR", chinese="王五")
    everything = [p.id for p in registry.find(registry.auditor, q, limit=1000).persons]
    assert len(everything) > 10
    seen: list[int | None] = []
    cursor = None
    while True:
        page = registry.find(registry.auditor, q, limit=4, cursor=cursor)
        seen += [p.id for p in page.persons]
        registry.add("HASSAN", "NEWCOMER", chinese="王新")  # registered while paging
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == everything


def test_a_cursor_works_only_for_its_own_search(registry: Registry) -> None:
    for given in "ABC":
        registry.add("CURSORY", given)
    page = registry.find(registry.auditor, "cursory", limit=1)
    assert page.next_cursor is not None
    assert registry.find(registry.auditor, " cursory ", limit=1, cursor=page.next_cursor).persons
    with pytest.raises(search.InvalidCursorError, match="another search"):
        registry.find(registry.auditor, "cursor", limit=1, cursor=page.next_cursor)
    for bad in ("", "!!!", "bm90LWEtY3Vyc29y", "OS45OTk5LmFiYw", page.next_cursor[:-2]):
        if bad:
            with pytest.raises(search.InvalidCursorError):
                registry.find(registry.auditor, "cursory", limit=1, cursor=bad)


def test_the_api_pages_by_cursor_and_still_by_offset(client: TestClient) -> None:
    headers = login_headers(client, "auditor")
    first = client.get("/api/persons", headers=headers, params={"limit": 2})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["total_capped"] is False
    assert body["next_cursor"]
    second = client.get(
        "/api/persons", headers=headers, params={"limit": 2, "cursor": body["next_cursor"]}
    )
    by_offset = client.get("/api/persons", headers=headers, params={"limit": 2, "offset": 2})
    assert second.json()["items"] == by_offset.json()["items"] != body["items"]
    for params in (
        {"cursor": "garbage!"},
        {"cursor": body["next_cursor"], "q": "X"},
        {"cursor": body["next_cursor"], "offset": 2},
    ):
        refused = client.get("/api/persons", headers=headers, params=params)
        assert refused.status_code == 422, params
        assert refused.json()["type"].endswith("invalid-cursor")


# --- the plans --------------------------------------------------------------------------------


@pytest.fixture
def big_registry(database_url: str, loaded: Loaded) -> Iterator[Registry]:
    """Enough persons (4,000) for the planners to prefer indexes for real, with statistics."""
    yield from _registry(database_url, 4000, loaded=loaded)


def _plans(registry: Registry, actor: Actor, q: str, cursor: str | None = None) -> list[str]:
    """The plan of every query a search sends, as the database explains it."""
    statements: list[tuple[str, Any]] = []

    def capture(
        _c: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(registry.engine, "before_cursor_execute", capture)
    try:
        registry.find(actor, q, cursor=cursor)
    finally:
        event.remove(registry.engine, "before_cursor_execute", capture)
    return [
        _explain(registry.engine, statement, parameters) for statement, parameters in statements
    ]


def _explain(engine: Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            return "\n".join(row[0] for row in rows)
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return "\n".join(str(row[-1]) for row in rows)


_FULL_SCAN = re.compile(r"(SCAN person(?!_search)\b(?! USING)|Seq Scan on person\b)")
_EXPECTED = {
    # kind: (query, index names one of which each database's plan must name)
    "family": ("HASSAN", ("ix_person_search_family",)),
    "chinese": (RARE_CHINESE_NAME, ("person_search VIRTUAL TABLE", "ix_person_search_trgm")),
    "substring": ("иванов", ("person_search VIRTUAL TABLE", "ix_person_search_trgm")),
    "short": ("王伟", ("ix_person_search_chinese",)),
    "latin short": ("LI", ("ix_person_search_family",)),
    "accented": ("HASSÂN", ("ix_person_search_family",)),
    "arabic variant": ("أحمد", ("ix_person_search_native",)),
}


def test_every_search_kind_is_answered_from_an_index(big_registry: Registry) -> None:
    """Names (3+ characters by trigrams, 1-2 by prefix), identifiers, the list and the expiry
    timer's query, for an officer of one office and for an auditor of all."""
    for actor in (big_registry.registrar, big_registry.auditor):
        for kind, (q, indexes) in _EXPECTED.items():
            plans = _plans(big_registry, actor, q)
            name_plans = [plan for plan in plans if any(index in plan for index in indexes)]
            assert name_plans, (kind, plans)
            for plan in plans:
                assert not _FULL_SCAN.search(plan), (kind, plan)
        _check_list_plans(big_registry, actor)
    _check_identifier_plans(big_registry)
    _check_expiry_plan(big_registry)


def test_a_name_page_reads_its_ranks_in_index_order(
    big_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A common name's page is read newest first from its ``(office_id, name, id)`` or
    ``(name, id)`` index, a page long, never sorted from all its matches; a substring's
    from the trigram index, newest first (SQLite) or through a window of recent ids
    (PostgreSQL)."""
    monkeypatch.setattr(search, "COUNT_CAP", 100)  # 300 equal names fill the count
    for given in range(600):
        big_registry.add("TIERSON", f"G{given}", office=given % 2)
    postgresql = big_registry.engine.dialect.name == "postgresql"
    with big_registry.engine.connect() as connection:  # as autovacuum leaves a table
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE person" if postgresql else "ANALYZE")
        )
    for actor, index in (
        (big_registry.registrar, "ix_person_search_family_office"),
        (big_registry.auditor, "ix_person_search_family"),
    ):
        plans = _plans(big_registry, actor, "TIERSON")
        if postgresql:  # the planner picks the name index, the newest ids or (for a name
            # every 8th person bears) the table's first rows, per size; each read is cut
            probes = [plan for plan in plans if "Append" in plan]  # the rank's probes
            assert probes, plans
            for plan in probes:  # one per name column, each cut by a Limit
                assert plan.count("->  Limit") >= 4, plan
        else:  # the index order is the page order: nothing sorted before the cut
            equal = [plan for plan in plans if re.search(rf"\b{index}\b", plan)]
            assert equal, plans
            for plan in equal:
                part = re.search(rf"SEARCH person USING COVERING INDEX {index} .*\n(.*)", plan)
                assert part is not None, plan
                assert "TEMP B-TREE" not in part.group(1), plan
        assert not any("trgm" in plan or "VIRTUAL TABLE" in plan for plan in plans), plans
    plans = _plans(big_registry, big_registry.auditor, "ванов")  # a substring only
    if postgresql:  # read window by window of recent ids, in an index
        windows = [plan for plan in plans if re.search(r"id >= \d+\)? AND \(?.*id < \d+", plan)]
        assert windows, plans
        for plan in windows:
            assert re.search(r"(ix_person_search_trgm|person_pkey)", plan), plan
            assert "Seq Scan" not in plan, plan
    else:  # FTS5 consumes ORDER BY rowid DESC (index 0x80 | 0x40): nothing sorted
        walks = [plan for plan in plans if "VIRTUAL TABLE" in plan]
        assert walks, plans
        for plan in walks:
            assert re.search(r"VIRTUAL TABLE INDEX 192:", plan), plan
            assert "TEMP B-TREE" not in plan, plan


def test_a_prefix_page_reads_its_range_in_index_order(
    big_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start of a common name (``tierso`` of 600 TIERSONs) fills its page and count from
    the prefix rank, read from the name's ``(office_id, name, id)`` or ``(name, id)`` index
    in index order and cut by a limit: never every match read and sorted first (a prefix
    once cost what it matched). The next page starts its range at the cursor."""
    monkeypatch.setattr(search, "COUNT_CAP", 20)
    for given in range(600):
        big_registry.add("TIERSON", f"G{given:03d}", office=given % 2)
    postgresql = big_registry.engine.dialect.name == "postgresql"
    with big_registry.engine.connect() as connection:  # as autovacuum leaves a table
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE person" if postgresql else "ANALYZE")
        )
    for actor, index in (
        (big_registry.registrar, "ix_person_search_family_office"),
        (big_registry.auditor, "ix_person_search_family"),
    ):
        first = big_registry.find(actor, "tierso", limit=10)
        assert [p.given_names for p in first.persons] == sorted(
            p.given_names for p in first.persons
        )  # name order (equal names: oldest first), as the index holds them
        assert first.next_cursor is not None
        for cursor in (None, first.next_cursor):
            plans = _plans(big_registry, actor, "tierso", cursor=cursor)
            ranges = [  # the family name's range (the equal probes are a union)
                plan
                for plan in plans
                if re.search(rf"\b{index}\b", plan) and not re.search("UNION|Append", plan)
            ]
            assert ranges, plans
            for plan in ranges:
                if postgresql:  # a Limit over the index walked in order, no Sort
                    assert re.match(rf"Limit .*\n\s*->  Index Scan using {index} ", plan), plan
                    assert not re.search(r"\bSort\b|Bitmap", plan), plan
                else:
                    assert "TEMP B-TREE" not in plan, plan
                    assert re.search(rf"SEARCH person USING INDEX {index} \(", plan), plan
            if cursor is not None:  # the next page's reads start at the cursor's (key, id)
                # (SQLite: the rest of the cursor's name from its id; PostgreSQL may read
                # that small id range by the primary key, then the names after it)
                seeks = r"folded_family=\? AND (row)?id>\?|folded_family\)::text > 'tierson'"
                assert any(re.search(seeks, plan) for plan in ranges), ranges
        assert not any("trgm" in plan or "VIRTUAL TABLE" in plan for plan in plans), plans


def test_a_page_of_a_common_name_reads_no_lower_rank(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal names enough for the page and the count: the prefix and substring ranks are
    not read at all, and the next pages go on through them in rank order."""
    monkeypatch.setattr(search, "COUNT_CAP", 5)
    registry.add("TIERSONNE", "PREFIX")
    registry.add("OTIERSON", "CONTAINS")
    equal = [registry.add("TIERSON", given) for given in "ABCDEFG"]
    statements: list[str] = []

    def capture(
        _c: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool
    ) -> None:
        statements.append(statement)

    event.listen(registry.engine, "before_cursor_execute", capture)
    try:
        first = registry.find(registry.auditor, "tierson", limit=3)
    finally:
        event.remove(registry.engine, "before_cursor_execute", capture)
    assert [p.id for p in first.persons] == equal[::-1][:3]
    assert (first.total, first.total_capped) == (5, True)
    assert not [s for s in statements if "MATCH" in s or "LIKE" in s or " > " in s], statements
    seen, cursor = [p.family_name for p in first.persons], first.next_cursor
    while cursor is not None:
        page = registry.find(registry.auditor, "tierson", limit=3, cursor=cursor)
        seen += [p.family_name for p in page.persons]
        cursor = page.next_cursor
    assert seen == ["TIERSON"] * 7 + ["TIERSONNE", "OTIERSON"]


def _check_identifier_plans(registry: Registry) -> None:
    with Session(registry.engine) as session:
        person = session.exec(select(PersonRecord).where(PersonRecord.id == 123)).one()
        serial = session.exec(select(CardRecord.serial).where(CardRecord.person_id == 123)).first()
    for q in (person.code, f"E{person.id:08d}", serial or ""):
        joined = "\n".join(_plans(registry, registry.auditor, q))
        assert not _FULL_SCAN.search(joined), joined
        assert "Seq Scan" not in joined, joined
        assert not re.search(r"SCAN (passport|card)\b", joined), joined


def _check_list_plans(registry: Registry, actor: Actor) -> None:
    """The newest persons first, a page at a time: read in index order, never sorted."""
    page = registry.find(actor, "", limit=20)
    assert page.next_cursor is not None
    assert registry.find(actor, "", limit=20, cursor=page.next_cursor).persons
    count, rows = _plans(registry, actor, "")
    for plan in (count, rows):
        assert "TEMP B-TREE" not in plan, plan
        assert not re.search(r"\bSort\b", plan), plan
    assert re.search(r"(person_pkey|ix_person_office_id|SCAN person$)", rows), rows


def _check_expiry_plan(registry: Registry) -> None:
    statements: list[tuple[str, Any]] = []

    def capture(
        _c: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        statements.append((statement, parameters))

    event.listen(registry.engine, "before_cursor_execute", capture)
    try:
        with Session(registry.engine) as session:
            expire_cards(session, at=datetime(2020, 1, 1, tzinfo=UTC), limit=500)
            session.rollback()
    finally:
        event.remove(registry.engine, "before_cursor_execute", capture)
    plan = _explain(registry.engine, *statements[-1])
    assert "ix_card_state_expires_at" in plan, plan


def test_sqlite_statistics_are_taken_at_start_so_batches_read_by_person(
    database_url: str, tmp_path: Path
) -> None:
    """Without statistics SQLite's planner read every active card to find a batch's current
    cards (by the state index); the service now analyses at start."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's autovacuum analyses by itself")
    registry = next(_registry(database_url, 4000, analyze=False))
    try:
        statements: list[tuple[str, Any]] = []

        def capture(
            _c: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
        ) -> None:
            statements.append((statement, parameters))

        def current_cards_plan(engine: Engine) -> str:
            statements.clear()
            event.listen(engine, "before_cursor_execute", capture)
            try:
                with Session(engine) as session:
                    current_cards_of(session, list(range(1, 33)))
            finally:
                event.remove(engine, "before_cursor_execute", capture)
            return _explain(engine, *statements[-1])

        assert "ix_card_person_id" not in current_cards_plan(registry.engine)  # by state
        app = create_app(Settings(workspace=tmp_path / "workspace", database_url=database_url))
        try:
            assert "ix_card_person_id" in current_cards_plan(app.state.engine)
        finally:
            app.state.engine.dispose()
        assert optimize(registry.engine) == []  # fresh statistics are left alone
    finally:
        registry.engine.dispose()


def test_a_page_of_persons_reads_the_offices_once(app: Any, client: TestClient) -> None:
    """Not once per row (the summaries' office lookups found nothing in the identity map,
    which holds its records only weakly)."""
    headers = login_headers(client, "auditor")
    statements: list[str] = []

    def capture(
        _c: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool
    ) -> None:
        statements.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", capture)
    try:
        page = client.get("/api/persons", headers=headers, params={"limit": 100})
    finally:
        event.remove(app.state.engine, "before_cursor_execute", capture)
    assert len(page.json()["items"]) >= 3
    assert sum(bool(re.search(r"\bFROM office\b", s)) for s in statements) == 1, statements


def test_a_schema_made_without_the_migrations_can_search_names(database_url: str) -> None:
    """``create_schema`` (tests, first start) builds the search indexes too."""
    engine = make_engine(database_url)
    try:
        create_schema(engine)
        load(engine, 50, offices=1)
        with Session(engine) as session:
            auditor = _actor(session, "bench.auditor")
            found = search.search_persons(session, auditor, RARE_CHINESE_NAME, limit=10)
            short = search.search_persons(session, auditor, RARE_CHINESE_NAME[:2], limit=10)
        assert found.total == short.total == 3
    finally:
        engine.dispose()


# --- the migration that stores the search keys --------------------------------------------------


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    from alembic import command

    from cardissuer.core import migrations

    if not down:
        migrations.upgrade(engine, revision)
        return
    config = migrations._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _stored_keys(engine: Engine) -> dict[int, tuple[tuple[Any, ...], tuple[str | None, ...]]]:
    """Each person's stored keys, and the keys of its names as the fold makes them now."""
    keys = ", ".join(search_key.FOLDED_COLUMNS)
    names = ", ".join(search_key.FOLDED_COLUMNS.values())
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT id, {keys}, {names} FROM person")).all()  # noqa: S608
    width = len(search_key.FOLDED_COLUMNS)
    return {
        int(row[0]): (
            tuple(row[1 : 1 + width]),
            tuple(
                search_key.folded_names(
                    dict(zip(search_key.FOLDED_COLUMNS.values(), row[1 + width :], strict=True))
                ).values()
            ),
        )
        for row in rows
    }


def test_the_fold_migration_fills_every_key_in_batches_and_goes_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Persons registered before ``0012_search_fold`` get their keys (read and written a
    batch at a time) and are found by any spelling after it; the downgrade restores the
    search objects of ``0009`` exactly, and they still find the persons."""
    from cardissuer.core import search_index

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        population = load(engine, 40, offices=2)
        _migrate(engine, "0011_phone_devices", down=True)  # with rows: the keys are dropped
        before = _schema(engine)
        with engine.begin() as connection:  # registered before the keys existed
            for family, given, native in (
                ("ÇELİK", "AYŞE", None),
                ("NGUYỄN", "VĂN ĐỨC", None),
                ("KARIMI", "ALI", "علی کریمی"),
            ):
                connection.execute(
                    text(
                        "INSERT INTO person (code, office_id, family_name, given_names, "
                        "native_name, name_key, nationality, birth_date, sex, created_at, "
                        "created_by, updated_at) VALUES (:code, :office, :family, :given, "
                        ":native, :key, 'TUR', 19800101, 'F', :at, :officer, :at)"
                    ),
                    {
                        "code": _new_code(),
                        "office": population.offices[0],
                        "family": family,
                        "given": given,
                        "native": native,
                        "key": name_key(family, given),
                        "at": AT,
                        "officer": population.officers[0],
                    },
                )
        reads: list[str] = []

        def count_reads(*args: Any) -> None:
            if "ORDER BY id LIMIT" in args[2]:
                reads.append(args[2])

        monkeypatch.setattr(search_index, "REFOLD_BATCH", 7)
        event.listen(engine, "before_cursor_execute", count_reads)
        try:
            _migrate(engine, "0012_search_fold")
        finally:
            event.remove(engine, "before_cursor_execute", count_reads)
        assert len(reads) == 43 // 7 + 2  # six full batches, the rest, and the empty end
        keys = _stored_keys(engine)
        assert len(keys) == 43
        assert all(stored == expected for stored, expected in keys.values())
        with Session(engine) as session:
            auditor = _actor(session, "bench.auditor")

            def found(q: str) -> list[str]:
                result = search.search_persons(session, auditor, q, limit=50)
                return [person.family_name for person in result.persons]

            assert found("celik") == ["ÇELİK"]
            assert found("nguyen van duc") == ["NGUYỄN"]
            assert found("علي كريمي") == ["KARIMI"]
        _migrate(engine, "0011_phone_devices", down=True)
        assert _schema(engine) == before
        with engine.connect() as connection:  # the old objects answer as they did
            if engine.dialect.name == "sqlite":
                matched = "SELECT rowid FROM person_search WHERE person_search MATCH '\"ÇELİK\"'"
            else:
                matched = (
                    "SELECT id FROM person WHERE upper(family_name || ' ' || given_names || ' ' "
                    "|| coalesce(native_name, '') || ' ' || coalesce(chinese_name, '')) "
                    "LIKE '%ÇELİK%'"
                )
            assert len(connection.execute(text(matched)).all()) == 1
    finally:
        engine.dispose()
