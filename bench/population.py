"""A synthetic registry of many persons, bulk-loaded straight into the tables.

Registering a million persons through the API would take hours; this writes the rows with
bulk INSERTs (SQLAlchemy Core ``executemany``) into a database already built by the
migrations, so every index, trigger and constraint of the real schema is in place. The
offices and officers are made by the service's own functions (passwords hashed as usual),
so the running app can log them in.

Names are realistic and spread over scripts: Latin only, Chinese (pinyin + 汉字), Russian
(Cyrillic), Arab (Arabic script), Korean (Hangul), so that each kind of search meets the mix
it meets in production. Every person has 1-2 passports (on average 1.57), 1-2 cards (1.31:
older ones superseded) and 2-3 grants (2.4), as in the registry measured at a million persons.
A few persons carry :data:`RARE_CHINESE_NAME`, so that a search for it has a known answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from cardissuer.core.config import Settings
from cardissuer.core.db import session_scope
from cardissuer.models import (
    CardRecord,
    CardState,
    OfficeCreate,
    OfficerCreate,
    PassportState,
    PersonRecord,
    Role,
    StatusListRecord,
)
from cardissuer.seed import DEMO_PASSWORD
from cardissuer.services.cards import SERIAL_ALPHABET
from cardissuer.services.officers import create_office, create_officer
from cardissuer.services.registry import name_key
from cardissuer.services.search_key import fold
from schemas import code as foreigner_code

RARE_CHINESE_NAME = "欧阳娜娜"
"""Given to :data:`RARE_COUNT` persons only."""
RARE_COUNT = 3
CHUNK = 5000
_TABLES = SQLModel.metadata.tables
PORTRAIT_BYTES = 520
"""The size of a card portrait as ``cardissuer.portrait`` makes it (AVIF, 64x80)."""

_LATIN_FAMILY = (
    "SMITH",
    "MUELLER",
    "GARCIA",
    "MARTIN",
    "ROSSI",
    "SILVA",
    "DUBOIS",
    "KOWALSKI",
    "NOVAK",
    "OKONKWO",
    "ADEYEMI",
    "MENSAH",
    "DIALLO",
    "KHAN",
    "SINGH",
    "PATEL",
    "SHARMA",
    "NGUYEN",
    "TRAN",
    "SANTOS",
    "PEREIRA",
    "HANSEN",
    "JOHANSSON",
    "YILMAZ",
    "KAYA",
    "HASSAN",
    "RAHMAN",
)
_LATIN_GIVEN = (
    "JOHN",
    "MARIA",
    "ANNA",
    "DAVID",
    "FATIMA",
    "AHMED",
    "CHIDI",
    "AMARA",
    "LUCAS",
    "SOFIA",
    "PEDRO",
    "ELENA",
    "OMAR",
    "PRIYA",
    "RAVI",
    "MINH",
    "LINH",
    "EMEKA",
    "KOFI",
    "AISHA",
)
_CHINESE_FAMILY = (
    ("WANG", "王"),
    ("LI", "李"),
    ("ZHANG", "张"),
    ("LIU", "刘"),
    ("CHEN", "陈"),
    ("YANG", "杨"),
    ("HUANG", "黄"),
    ("ZHAO", "赵"),
    ("WU", "吴"),
    ("ZHOU", "周"),
    ("XU", "徐"),
    ("SUN", "孙"),
    ("MA", "马"),
    ("ZHU", "朱"),
    ("HU", "胡"),
    ("GUO", "郭"),
    ("HE", "何"),
    ("LIN", "林"),
)
_CHINESE_GIVEN = (
    ("WEI", "伟"),
    ("FANG", "芳"),
    ("NA", "娜"),
    ("MIN", "敏"),
    ("JING", "静"),
    ("LEI", "磊"),
    ("QIANG", "强"),
    ("YAN", "艳"),
    ("JUN", "军"),
    ("YONG", "勇"),
    ("JIE", "杰"),
    ("TAO", "涛"),
    ("MING", "明"),
    ("CHAO", "超"),
    ("XIA", "霞"),
    ("PING", "平"),
    ("HUI", "辉"),
    ("LING", "玲"),
)
_RUSSIAN = (
    ("IVANOV", "Иванов", "IVAN", "Иван"),
    ("PETROVA", "Петрова", "OLGA", "Ольга"),
    ("SMIRNOV", "Смирнов", "DMITRY", "Дмитрий"),
    ("KUZNETSOVA", "Кузнецова", "ANNA", "Анна"),
    ("POPOV", "Попов", "SERGEY", "Сергей"),
    ("SOKOLOVA", "Соколова", "ELENA", "Елена"),
    ("VOLKOV", "Волков", "ALEXEI", "Алексей"),
    ("MOROZOVA", "Морозова", "IRINA", "Ирина"),
)
_ARAB = (
    ("AL-HASHIMI", "الهاشمي", "MOHAMMED", "محمد"),
    ("AL-SAUD", "آل سعود", "FAISAL", "فيصل"),
    ("HADDAD", "حداد", "LAYLA", "ليلى"),
    ("NASSER", "ناصر", "OMAR", "عمر"),
    ("KHALIL", "خليل", "YOUSEF", "يوسف"),
    ("MANSOUR", "منصور", "FATIMA", "فاطمة"),
)
_KOREAN = (
    ("KIM", "김", "MINJUN", "민준"),
    ("LEE", "이", "SEOYEON", "서연"),
    ("PARK", "박", "JIHO", "지호"),
    ("CHOI", "최", "HAEUN", "하은"),
    ("JUNG", "정", "DOYUN", "도윤"),
    ("KANG", "강", "JIWOO", "지우"),
)
_NATIONALITY = {"latin": ("NGA", "GHA", "IND", "BRA", "DEU", "FRA", "TUR", "VNM")}
_SERVICES = ("hc", "bk", "ed", "tr")


@dataclass
class Population:
    """What was loaded, and samples of it for the searches to look up."""

    persons: int = 0
    passports: int = 0
    cards: int = 0
    grants: int = 0
    offices: list[int] = field(default_factory=list)
    officers: list[int] = field(default_factory=list)
    """One registrar per office, in the offices' order."""
    usernames: dict[str, str] = field(default_factory=dict)
    """``registrar`` and ``supervisor`` (first office), ``auditor`` (all offices) -> username."""
    codes: list[str] = field(default_factory=list)
    passport_numbers: list[str] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)


def load(
    engine: Engine,
    persons: int,
    *,
    seed: int = 20261205,
    offices: int = 8,
    analyze: bool = True,
    portraits: float = 0.0,
    qr_chars: int = 0,
) -> Population:
    """Add ``persons`` persons (and their passports, cards, grants) to a migrated database,
    then (``analyze``) give the planner statistics, as the service does after bulk changes.

    A share ``portraits`` of the persons get a portrait of :data:`PORTRAIT_BYTES` random
    bytes (an AVIF does not compress), and every card a text of ``qr_chars`` characters."""
    rng = random.Random(seed)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    population = Population()
    _make_offices(engine, population, offices, at=at)
    with engine.connect() as connection:
        first = (connection.execute(select(func.max(PersonRecord.id))).scalar() or 0) + 1
        card_first = (connection.execute(select(func.max(CardRecord.id))).scalar() or 0) + 1
    officer = population.officers[0]
    card_id = card_first
    # A generator of its own: the names drawn from ``rng`` stay those of the seed.
    lists = _StatusLists(engine, random.Random(f"{seed}-status"), at=at)
    for start in range(first, first + persons, CHUNK):
        people: list[dict[str, Any]] = []
        passports: list[dict[str, Any]] = []
        cards: list[dict[str, Any]] = []
        grants: list[dict[str, Any]] = []
        pictures: list[dict[str, Any]] = []
        texts: list[dict[str, Any]] = []
        for person_id in range(start, min(start + CHUNK, first + persons)):
            row = _person(rng, person_id, population, at=at)
            people.append(row)
            if portraits and rng.random() < portraits:
                pictures.append({"person_id": person_id, "data": rng.randbytes(PORTRAIT_BYTES)})
            for index in range(1 if rng.random() < 0.43 else 2):
                number = f"{'EKPG'[index]}{person_id:08d}"
                passports.append(
                    {
                        "person_id": person_id,
                        "number": number,
                        "issuing_country": row["nationality"],
                        "expires_on": None,
                        "state": PassportState.CURRENT if index == 0 else PassportState.REPLACED,
                        "recorded_at": at,
                        "recorded_by": officer,
                    }
                )
                if rng.random() < 0.001:
                    population.passport_numbers.append(number)
            count = 1 if rng.random() < 0.69 else 2
            for index in range(count):
                serial = "".join(rng.choice(SERIAL_ALPHABET) for _ in range(10))
                issued = at - timedelta(days=rng.randrange(1, 700))
                current = index == count - 1
                list_id, status_index = lists.take()
                cards.append(
                    {
                        "id": card_id,
                        "serial": serial,
                        "person_id": person_id,
                        "office_id": row["office_id"],
                        "state": CardState.ACTIVE if current else CardState.SUPERSEDED,
                        "list_id": list_id,
                        "status_index": status_index,
                        "issued_at": issued,
                        "valid_from": issued,
                        "expires_at": issued + timedelta(days=730),
                        "kid": "bench",
                        "claims_digest": "0" * 43,
                        "issued_by": officer,
                        "idempotency_key": None,
                        "superseded_by": None if current else card_id + 1,
                        "revoked_reason": None,
                        "state_changed_at": issued,
                    }
                )
                texts.append({"card_id": card_id, "qr_text": "A" * qr_chars})
                card_id += 1
                if current and rng.random() < 0.001:
                    population.serials.append(serial)
            for service in rng.sample(_SERVICES, 2 if rng.random() < 0.6 else 3):
                grants.append(
                    {
                        "person_id": person_id,
                        "service": service,
                        "valid_from": None,
                        "valid_until": None,
                        "granted_at": at,
                        "granted_by": officer,
                        "withdrawn_at": None,
                        "withdrawn_by": None,
                    }
                )
        # Cards point at their successors: insert them last-first within a person.
        with engine.begin() as connection:
            connection.execute(_TABLES["person"].insert(), people)
            connection.execute(_TABLES["passport"].insert(), passports)
            connection.execute(_TABLES["card"].insert(), list(reversed(cards)))
            connection.execute(_TABLES["card_text"].insert(), texts)
            if pictures:
                connection.execute(_TABLES["person_portrait"].insert(), pictures)
            connection.execute(_TABLES["grant"].insert(), grants)
        population.persons += len(people)
        population.passports += len(passports)
        population.cards += len(cards)
        population.grants += len(grants)
    _plant_rare_names(engine, first, persons, rng)
    _after_bulk(engine, analyze=analyze)
    _store_statuses(engine)
    return population


class _StatusLists:
    """Status list indexes as the service hands them out: random indexes of the newest list
    until it is half full (``cardissuer.services.cards.open_list``), then a new list."""

    def __init__(self, engine: Engine, rng: random.Random, *, at: datetime) -> None:
        self.engine, self.rng, self.at = engine, rng, at
        self.size = Settings.model_fields["status_list_size"].default
        with engine.connect() as connection:
            self.count = (
                connection.execute(select(func.count()).select_from(StatusListRecord)).scalar() or 0
            )
        self.list_id = ""
        self.free: list[int] = []

    def take(self) -> tuple[str, int]:
        """The next card's list and index (a new list when the last one is half full)."""
        if not self.free:
            self._open()
        return self.list_id, self.free.pop()

    def _open(self) -> None:
        self.count += 1
        self.list_id = str(self.count)
        with self.engine.begin() as connection:
            connection.execute(
                _TABLES["status_list"].insert(),
                [
                    {
                        "list_id": self.list_id,
                        "bits": 2,
                        "size": self.size,
                        # The newest list is the one the service goes on filling.
                        "created_at": self.at + timedelta(seconds=self.count),
                    }
                ],
            )
        self.free = self.rng.sample(range(self.size), self.size // 2)


def _store_statuses(engine: Engine) -> None:
    """The lists' packed statuses computed from the cards, as ``fmcard db upgrade`` does."""
    from cardissuer.services.statuses import rebuild

    with session_scope(engine) as session:
        rebuild(session)


def _make_offices(engine: Engine, population: Population, count: int, *, at: datetime) -> None:
    """Offices with one registrar each (the bulk rows' officer), and an auditor."""
    with session_scope(engine) as session:
        for number in range(count):
            office = create_office(
                session,
                None,
                OfficeCreate(
                    code=f"BENCH-{number:02d}",
                    name_en=f"Office {number}",
                    name_zh=f"派出所 {number}",
                ),
                at=at,
            )
            username = f"bench.registrar{number}"
            officer = create_officer(
                session,
                None,
                OfficerCreate(
                    username=username,
                    display_name=username,
                    role=Role.REGISTRAR,
                    password=DEMO_PASSWORD,
                ),
                at=at,
                office_id=office.id,
            )
            population.offices.append(office.id or 0)
            population.officers.append(officer.id or 0)
        create_officer(  # revokes cards in the first office (the scale section's revocations)
            session,
            None,
            OfficerCreate(
                username="bench.supervisor0",
                display_name="bench.supervisor0",
                role=Role.SUPERVISOR,
                password=DEMO_PASSWORD,
            ),
            at=at,
            office_id=population.offices[0],
        )
        create_officer(
            session,
            None,
            OfficerCreate(
                username="bench.auditor",
                display_name="bench.auditor",
                role=Role.AUDITOR,
                password=DEMO_PASSWORD,
            ),
            at=at,
            office_id=population.offices[0],
        )
    population.usernames = {
        "registrar": "bench.registrar0",
        "supervisor": "bench.supervisor0",
        "auditor": "bench.auditor",
    }


def _person(
    rng: random.Random, person_id: int, population: Population, *, at: datetime
) -> dict[str, Any]:
    kind = rng.random()
    native = chinese = None
    if kind < 0.3:
        (family, family_zh), (given, given_zh) = (
            rng.choice(_CHINESE_FAMILY),
            rng.choice(_CHINESE_GIVEN),
        )
        chinese = family_zh + given_zh
        if rng.random() < 0.5:
            second, second_zh = rng.choice(_CHINESE_GIVEN)
            given, chinese = f"{given}{second}", chinese + second_zh
        nationality = rng.choice(("CHN", "TWN", "SGP", "MYS"))
    elif kind < 0.45:
        family, family_ru, given, given_ru = rng.choice(_RUSSIAN)
        native = f"{family_ru} {given_ru}"
        nationality = rng.choice(("RUS", "KAZ", "UKR"))
    elif kind < 0.6:
        family, family_ar, given, given_ar = rng.choice(_ARAB)
        native = f"{given_ar} {family_ar}"
        nationality = rng.choice(("SAU", "EGY", "JOR", "ARE"))
    elif kind < 0.7:
        family, family_ko, given, given_ko = rng.choice(_KOREAN)
        native = family_ko + given_ko
        nationality = "KOR"
    else:
        family, given = rng.choice(_LATIN_FAMILY), rng.choice(_LATIN_GIVEN)
        nationality = rng.choice(_NATIONALITY["latin"])
    code = _code(rng)
    if rng.random() < 0.001:
        population.codes.append(code)
    return {
        "id": person_id,
        "code": code,
        "office_id": population.offices[person_id % len(population.offices)],
        "family_name": family,
        "given_names": given,
        "native_name": native,
        "chinese_name": chinese,
        "name_key": name_key(family, given),
        "nationality": nationality,
        "birth_date": rng.randrange(1950, 2005) * 10000
        + rng.randrange(1, 13) * 100
        + rng.randrange(1, 29),
        "sex": rng.choice("MF"),
        "phone": None,
        "email": None,
        "created_at": at,
        "created_by": population.officers[0],
        "updated_at": at,
    }


def _code(rng: random.Random) -> str:
    """A valid foreigner code from ``rng`` (the check character as the library makes it)."""
    body = "".join(
        rng.choice(foreigner_code.ALPHABET) for _ in range(foreigner_code.CODE_LENGTH - 1)
    )
    return body + foreigner_code.ALPHABET[foreigner_code._check_value(body)]


def _plant_rare_names(engine: Engine, first: int, persons: int, rng: random.Random) -> None:
    """A bulk UPDATE of a name sets its search key too (the model does so for the service)."""
    with engine.begin() as connection:
        for person_id in rng.sample(range(first, first + persons), min(RARE_COUNT, persons)):
            connection.execute(
                _TABLES["person"]
                .update()
                .where(_TABLES["person"].c.id == person_id)
                .values(chinese_name=RARE_CHINESE_NAME, folded_chinese=fold(RARE_CHINESE_NAME))
            )


def _after_bulk(engine: Engine, *, analyze: bool) -> None:
    """Sequences past the ids written by hand (PostgreSQL); statistics for the planner."""
    from cardissuer.core.db import optimize

    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for table in ("person", "passport", "card", "grant"):
                reset = (
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "  # noqa: S608
                    f'(SELECT coalesce(max(id), 1) FROM "{table}"))'
                )
                connection.execute(text(reset))
        if not analyze:
            return
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
        return
    if analyze:
        optimize(engine, analyze_all=True)
