"""Section 13: an online application, from its submission to the officer's approval.

On SQLite and PostgreSQL (a temporary database, as section 5), the app
(:func:`cardissuer.main.create_app`) with the demo data, a registrar logged in to the console
through a keep-alive in-process HTTP client (Starlette's TestClient: the whole ASGI stack,
middleware, CSRF and templates included, without a socket). For each of ``n`` applications,
each of a different person (random Latin names, nationalities and birth dates, so that no
duplicate candidates stop a registrar):

1. **submit**: the application row and its two re-encoded JPEGs (passport page, portrait)
   inserted in one transaction, as the portal stores a submission (the portal's own HTTP
   route is not part of this section);
2. **queue**: ``GET /console/applications`` (the office's open applications, first page);
3. **open**: ``GET /console/applications/{reference}`` (the form, candidates, passport
   history);
4. **approve**: ``POST /console/applications/{reference}/approve``: registers the person,
   grants two services, signs and stores the printed card, makes the holder link, audits it
   all, commits, then writes the holder's e-mail (the development outbox, a file per
   message) and records that it went; the redirect is not followed.

Timed from sending to the whole response (submit: the transaction). p50 and p99 per step.
"""

from __future__ import annotations

import io
import logging
import random
import re
import secrets
import statistics
import tempfile
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from time import perf_counter

from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bench.issuance import _postgres_admin_url, _postgres_database, _postgres_problem
from bench.portrait import SAMPLE_PHOTO
from bench.report import Section, Table
from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.core.db import session_scope
from cardissuer.main import create_app
from cardissuer.models import OfficeRecord, PassportIn, PersonCreate
from cardissuer.portal.catalogue import ApplicationForm
from cardissuer.portal.models import (
    ApplicationFileKind,
    ApplicationFileRecord,
    ApplicationKind,
    ApplicationRecord,
    ApplicationState,
)
from cardissuer.seed import DEMO_PASSWORD, seed_demo

QUICK_N = 20
FULL_N = 200
STEPS = ("submit", "queue", "open", "approve")
_SYLLABLES = ("KA", "LO", "MI", "RU", "SE", "TA", "NO", "VI", "DA", "BE", "ZU", "FO", "GI")
_NATIONS = ("BRA", "VNM", "NGA", "TUR", "EGY", "IND", "KOR", "FRA", "ESP", "PAK", "IRN")


def _jpegs() -> tuple[bytes, bytes]:
    """The passport page and the portrait as re-encoded JPEGs (made once)."""
    with Image.open(SAMPLE_PHOTO) as image:
        picture = image.convert("RGB")
        page, portrait = io.BytesIO(), io.BytesIO()
        picture.resize((900, 630)).save(page, "JPEG", quality=80)
        picture.save(portrait, "JPEG", quality=85)
    return page.getvalue(), portrait.getvalue()


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))


def _form(rng: random.Random, index: int) -> ApplicationForm:
    nationality = rng.choice(_NATIONS)
    born = date(1950 + rng.randrange(50), 1 + rng.randrange(12), 1 + rng.randrange(28))
    return ApplicationForm(
        person=PersonCreate(
            family_name=_word(rng),
            given_names=f"{_word(rng)} {_word(rng)}",
            nationality=nationality,
            birth_date=born.isoformat(),
            passport=PassportIn(
                number=f"B{index:07d}{rng.randrange(10)}",
                issuing_country=nationality,
                expires_on=date(2035, 1, 1),
            ),
        ),
        services=["hc", "bk"],
    )


def _submit(
    engine: Engine, office_id: int, form: ApplicationForm, files: tuple[bytes, bytes]
) -> str:
    reference = secrets.token_hex(8).upper()
    at = datetime.now(UTC)
    with session_scope(engine) as session:
        record = ApplicationRecord(
            reference=reference,
            secret_hash=secrets.token_hex(32),
            kind=ApplicationKind.FIRST_CARD.value,
            state=ApplicationState.SUBMITTED.value,
            office_id=office_id,
            language="en",
            email=f"applicant-{reference.lower()}@example.org",
            form=form.model_dump_json(),
            submitted_at=at,
            created_at=at,
            updated_at=at,
        )
        session.add(record)
        session.flush()
        for kind, data in zip(
            (ApplicationFileKind.PASSPORT_PAGE, ApplicationFileKind.PORTRAIT), files, strict=True
        ):
            session.add(
                ApplicationFileRecord(
                    application_id=record.id or 0,
                    kind=kind.value,
                    media_type="image/jpeg",
                    data=data,
                )
            )
    return reference


def _run_backend(url: str, workspace: Path, n: int, rng: random.Random) -> dict[str, list[float]]:
    from fastapi.testclient import TestClient

    app = create_app(Settings(workspace=workspace, database_url=url))
    logging.getLogger("fmcard").setLevel(logging.WARNING)  # no line per request
    engine = app.state.engine
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    try:
        seed_demo(engine, issuing_context_of(app), environment=app.state.settings.environment)
        with session_scope(engine) as session:
            office_id = session.exec(select(OfficeRecord.id).order_by(col(OfficeRecord.id))).first()
        if office_id is None:
            raise RuntimeError("the demo data made no office")
        files = _jpegs()
        with TestClient(app) as client:
            login = client.get("/console/login")
            nonce = _found(r'name="nonce" value="([^"]+)"', login.text)
            client.post(
                "/console/login",
                data={"username": "registrar", "password": DEMO_PASSWORD, "nonce": nonce},
                follow_redirects=False,
            )
            for index in range(n):
                form = _form(rng, index)
                started = perf_counter()
                reference = _submit(engine, office_id, form, files)
                times["submit"].append(perf_counter() - started)

                started = perf_counter()
                queue = client.get("/console/applications")
                times["queue"].append(perf_counter() - started)
                _expect(queue.status_code, 200, "the queue")

                started = perf_counter()
                page = client.get(f"/console/applications/{reference}")
                times["open"].append(perf_counter() - started)
                csrf = _found(r'name="csrf" value="([0-9a-f]{64})"', page.text)

                started = perf_counter()
                done = client.post(
                    f"/console/applications/{reference}/approve",
                    data={"csrf": csrf},
                    follow_redirects=False,
                )
                times["approve"].append(perf_counter() - started)
                _expect(done.status_code, 303, "the approval")
        with session_scope(engine) as session:
            approved = session.exec(
                select(ApplicationRecord.id).where(
                    ApplicationRecord.state == ApplicationState.APPROVED.value
                )
            ).all()
        if len(approved) != n:
            raise RuntimeError(f"{len(approved)} of {n} applications were approved")
    finally:
        engine.dispose()
    return times


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"the page has no {pattern!r}")
    return match.group(1)


def _expect(status: int, expected: int, what: str) -> None:
    if status != expected:
        raise RuntimeError(f"{what} answered {status}, not {expected}")


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        round(statistics.median(ordered) * 1000, 1),
        round(p99 * 1000, 1),
        round(ordered[-1] * 1000, 1),
    )


def run(*, quick: bool, seed: int) -> Section:
    n = QUICK_N if quick else FULL_N
    section = Section("portal", "13. Online applications: submit and approve")
    table = Table(
        f"{n} first-card applications, one after another (ms)",
        ("database", "step", "n", "p50", "p99", "max"),
    )
    section.tables.append(table)
    admin_url = _postgres_admin_url()
    problem = _postgres_problem(admin_url)
    backends = ["sqlite"] if problem else ["sqlite", "postgresql"]
    if problem:
        section.notes.append(f"PostgreSQL skipped: {problem}")
    rng = random.Random(seed)
    for backend in backends:
        with ExitStack() as stack:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            if backend == "sqlite":
                url = f"sqlite:///{directory / 'fmcard.db'}"
            else:
                url = stack.enter_context(_postgres_database(admin_url))
            times = _run_backend(url, directory / "workspace", n, rng)
        for step in STEPS:
            table.add(backend, step, len(times[step]), *_percentiles(times[step]))
        section.data[backend] = {step: _percentiles(times[step]) for step in STEPS}
    section.notes.append(
        "in-process HTTP (TestClient, one keep-alive client); submit is the database insert "
        "of the application and its two photos; approve includes registering, granting, "
        "signing the card, the holder link, the audit entries and writing the e-mail to the "
        "development outbox"
    )
    return section
