"""Section 13: an online application, from its submission to the officer's approval.

On SQLite and PostgreSQL (a temporary database, as section 5), the app
(:func:`cardissuer.main.create_app`) with the demo data, a registrar logged in to the console
through a keep-alive in-process HTTP client (Starlette's TestClient: the whole ASGI stack,
middleware, CSRF and templates included, without a socket). For each of ``n`` applications,
each of a different person (random Latin names, nationalities and birth dates, so that no
duplicate candidates stop a registrar):

1. **submit**: ``POST /portal/apply`` by an applicant signed in once with a one-time code
   (read from the development outbox): the typed fields and MRZ checked, the passport page
   and the portrait decoded, checked and re-encoded, the application stored and audited, the
   confirmation e-mail written; the redirect is not followed;
2. **queue**: ``GET /console/applications`` (the office's open applications, first page);
3. **open**: ``GET /console/applications/{reference}`` (the form, candidates, passport
   history);
4. **approve**: ``POST /console/applications/{reference}/approve``: registers the person,
   grants two services, signs and stores the printed card, makes the holder link, audits it
   all, commits, then writes the holder's e-mail (the development outbox, a file per
   message) and records that it went; the redirect is not followed.

Timed from sending to the whole response. p50 and p99 per step.
"""

from __future__ import annotations

import email
import email.policy
import io
import logging
import random
import re
import statistics
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from time import perf_counter

from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import select

from bench.issuance import scratch_databases
from bench.portrait import SAMPLE_PHOTO
from bench.report import Section, Table
from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.core.db import session_scope
from cardissuer.main import create_app
from cardissuer.models import PassportIn, PersonCreate
from cardissuer.portal.catalogue import ApplicationForm
from cardissuer.portal.models import (
    ApplicationRecord,
    ApplicationState,
)
from cardissuer.portal.mrz import td3_lines
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
        # A phone's portrait is far larger than the card's sample; the portal wants 300x375+.
        picture.resize((600, 750)).save(portrait, "JPEG", quality=85)
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


def _fields(form: ApplicationForm) -> dict[str, str | list[str]]:
    """The portal's form fields for ``form``, with an MRZ that agrees with them."""
    person, passport = form.person, form.person.passport
    expiry = (passport.expires_on or date(2035, 1, 1)).strftime("%y%m%d")
    line1, line2 = td3_lines(
        issuing_state=passport.issuing_country,
        surname=person.family_name,
        given_names=person.given_names,
        number=passport.number,
        nationality=person.nationality,
        birth=person.birth_date[2:].replace("-", ""),
        sex=person.sex,
        expiry=expiry,
    )
    return {
        "family_name": person.family_name,
        "given_names": person.given_names,
        "nationality": person.nationality,
        "birth_date": person.birth_date,
        "sex": person.sex,
        "passport_number": passport.number,
        "passport_country": passport.issuing_country,
        "passport_expiry": (passport.expires_on or date(2035, 1, 1)).isoformat(),
        "mrz1": line1,
        "mrz2": line2,
        "services": list(form.services),
    }


def _csrf(applicant: TestClient) -> str:
    """The token the portal puts in its forms for the applicant's current cookies (it is
    bound to the session, or before it to the pending address or a pre-session nonce)."""
    return _found(r'name="csrf" value="([^"]+)"', applicant.get("/portal/sign-in").text)


def _sign_in(applicant: TestClient, outbox: Path, address: str) -> None:
    """Ask for a code, read it from the development outbox, enter it (once per run)."""
    csrf = _csrf(applicant)
    sent = applicant.post(
        "/portal/sign-in",
        data={"email": address, "next": "apply", "csrf": csrf},
        follow_redirects=False,
    )
    _expect(sent.status_code, 303, "asking for a code")
    [mail] = outbox.glob("*.eml")
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    body = (
        message.get_body(preferencelist=("plain",)) if isinstance(message, EmailMessage) else None
    )
    code = _found(r"\b(\d{6})\b", str(body.get_content() if body else ""))
    entered = applicant.post(
        "/portal/code",
        data={"code": code, "next": "apply", "csrf": _csrf(applicant)},
        follow_redirects=False,
    )
    _expect(entered.status_code, 303, "entering the code")


def _submit(applicant: TestClient, form: ApplicationForm, files: tuple[bytes, bytes]) -> str:
    page, portrait = files
    response = applicant.post(
        "/portal/apply",
        data={**_fields(form), "csrf": _csrf(applicant)},
        files={
            "passport_page": ("page.jpg", page, "image/jpeg"),
            "portrait": ("portrait.jpg", portrait, "image/jpeg"),
        },
        follow_redirects=False,
    )
    if response.status_code != 303:
        errors = re.findall(r'id="([a-z_0-9]+)-error">([^<]+)<', response.text)
        raise RuntimeError(f"the application answered {response.status_code}: {errors[:3]}")
    return _found(r"/portal/applications/([^?]+)", response.headers["location"])


def _run_backend(url: str, workspace: Path, n: int, rng: random.Random) -> dict[str, list[float]]:
    app = create_app(Settings(workspace=workspace, database_url=url))
    logging.getLogger("fmcard").setLevel(logging.WARNING)  # no line per request
    engine = app.state.engine
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    try:
        seed_demo(engine, issuing_context_of(app), environment=app.state.settings.environment)
        files = _jpegs()
        # The applicant comes over https, as the portal's Secure cookies require.
        applicant_client = TestClient(
            app, base_url="https://testserver", headers={"Accept-Language": "en"}
        )
        with TestClient(app) as client, applicant_client as applicant:
            _sign_in(applicant, workspace / "outbox", "applicant@example.org")
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
                reference = _submit(applicant, form, files)
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
    rng = random.Random(seed)
    for backend, url, directory, _ in scratch_databases(section):
        times = _run_backend(url, directory / "workspace", n, rng)
        for step in STEPS:
            table.add(backend, step, len(times[step]), *_percentiles(times[step]))
        section.data[backend] = {step: _percentiles(times[step]) for step in STEPS}
    section.notes.append(
        "in-process HTTP (TestClient: an applicant and an officer, keep-alive); submit "
        "includes the MRZ check, decoding, checking and re-encoding both photos and writing the "
        "confirmation e-mail; approve includes registering, granting, "
        "signing the card, the holder link, the audit entries and writing the e-mail to the "
        "development outbox"
    )
    return section
