"""Demo data for a development service: an office, one officer per role, a few persons.

Passwords of the demo officers are printed when they are made and published in the docs, so
they may exist only in development databases: :func:`seed_demo` itself refuses to run in
production (:class:`DemoRefusedError`, before anything is read or written), whoever calls it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from cardissuer.core import security
from cardissuer.core.config import Environment
from cardissuer.core.db import session_scope
from cardissuer.errors import DemoRefusedError
from cardissuer.models import (
    GrantCreate,
    OfficeCreate,
    OfficerCreate,
    OfficerRecord,
    PassportIn,
    PersonCreate,
    Role,
)
from cardissuer.portrait import make_portrait
from cardissuer.services import cards, registry
from cardissuer.services.cards import IssuingContext
from cardissuer.services.officers import actor_of, create_office, create_officer

DEMO_PASSWORD = security.DEMO_PASSWORD
DEMO_OFFICERS = (
    ("registrar", "Wang Fang 王芳", Role.REGISTRAR),
    ("supervisor", "Li Wei 李伟", Role.SUPERVISOR),
    ("auditor", "Zhang Min 张敏", Role.AUDITOR),
    ("admin", "Chen Jie 陈杰", Role.ADMIN),
)
DEMO_PERSONS = (
    ("OKONKWO", "CHIDI EMEKA", None, None, "NGA", "1979-07-02", "A01234567", ["hc", "bk"]),
    (
        "IVANOVA",
        "ANNA SERGEEVNA",
        "Иванова Анна Сергеевна",
        "伊万诺娃·安娜",
        "RUS",
        "1990-11-23",
        "751234567",
        ["hc", "ed"],
    ),
    (
        "AL-HASHIMI",
        "MOHAMMED ABDULLAH",
        "محمد عبدالله الهاشمي",
        "穆罕默德",
        "SAU",
        "1985-03-14",
        "K1234567",
        ["hc", "bk", "ho"],
    ),
)


def demo_email(number: int) -> str:
    """The e-mail address of the ``number``-th demo person (from 1)."""
    return f"holder{number}@demo.example.org"


DEMO_REFUSED = (
    "demo data is for development only: its officers' password is published and its cards "
    "would be signed with the production key (unset FMCARD_ENVIRONMENT=production or drop --demo)"
)


def demo_logins(engine: Engine) -> list[tuple[str, Role]]:
    """The demo officers one can still log in as with :data:`DEMO_PASSWORD` (active, the
    password unchanged), to print at every start of a demo service, not only the first."""
    usernames = [username for username, _, _ in DEMO_OFFICERS]
    with session_scope(engine) as session:
        officers = session.exec(
            select(OfficerRecord).where(col(OfficerRecord.username).in_(usernames))
        ).all()
        usable = {
            officer.username: officer.role
            for officer in officers
            if officer.active and security.verify_password(DEMO_PASSWORD, officer.password_hash)
        }
    return [(username, usable[username]) for username in usernames if username in usable]


def seed_demo(engine: Engine, context: IssuingContext, *, environment: Environment) -> bool:
    """Create the demo office, officers and persons once; return whether anything was made.

    ``environment`` is required so that no caller can forget it: in production nothing is
    made and :class:`DemoRefusedError` is raised.
    """
    if environment is not Environment.DEVELOPMENT:
        raise DemoRefusedError(DEMO_REFUSED)
    at = datetime.now(UTC).replace(microsecond=0)
    with session_scope(engine) as session:
        if session.exec(select(OfficerRecord)).first() is not None:
            return False
        office = create_office(
            session,
            None,
            OfficeCreate(
                code="YW-FUTIAN", name_en="Futian Market Police Station", name_zh="福田市场派出所"
            ),
            at=at,
        )
        other = OfficeCreate(
            code="YW-CHOUCHENG", name_en="Choucheng Police Station", name_zh="稠城派出所"
        )
        create_office(session, None, other, at=at)
        officers = {
            username: create_officer(
                session,
                None,
                OfficerCreate(
                    username=username, display_name=name, role=role, password=DEMO_PASSWORD
                ),
                at=at,
                office_id=office.id,
            )
            for username, name, role in DEMO_OFFICERS
        }
        actor = actor_of(officers["registrar"])
        photo = resources.files("cardissuer").joinpath("demo/sample-photo.jpg").read_bytes()
        for number, (
            family,
            given,
            native,
            chinese,
            nationality,
            birth,
            passport,
            services,
        ) in enumerate(DEMO_PERSONS, start=1):
            person = registry.register(
                session,
                actor,
                PersonCreate(
                    family_name=family,
                    given_names=given,
                    native_name=native,
                    chinese_name=chinese,
                    nationality=nationality,
                    birth_date=birth,
                    passport=PassportIn(number=passport, issuing_country=nationality),
                    # An address for the holder portal's "I already have a card" (development
                    # mail goes to the workspace's outbox; see README).
                    email=demo_email(number),
                ),
                at=at,
                portrait=make_portrait(photo).data if family == "AL-HASHIMI" else None,
            )
            for service in services:
                cards.grant(
                    session,
                    actor,
                    person.code,
                    GrantCreate(service=service),
                    at=at,
                    catalogue=[service],
                    context=None,
                )
            cards.issue(session, actor, person.code, at=at, context=context)
    return True
