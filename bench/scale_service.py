"""Section 9, second part: the running service at scale, for everything that is not a search.

The registries of :mod:`bench.scale` (the small and the large size, on each database) are
served as ``fmcard serve`` serves them (uvicorn, one worker, a child process each:
:func:`bench.publishing.serving`) and measured over HTTP from this process:

1. Single requests from one keep-alive client, the sizes taking turns request by request (a
   slow spell of the machine hits both): read a person; register a person who duplicates one
   already there (answered ``409 duplicate-suspected``: the duplicate check, nothing
   written); GET a status list and the bundle, unchanged (200) and with their ETag (304); issue
   a card (a re-issue: the person's current card is superseded); revoke a card, then GET the
   bundle, which now has a new status list to sign and a new bundle to build ("bundle after a
   revocation": how long a change takes to be published and served, since the service
   publishes on request).
2. Issuance from 32 concurrent clients (:mod:`bench.loadgen`, a process of its own), each size
   in turn, twice; the better round is reported (the machine is shared), both are kept in the
   JSON.

Persons and cards are taken from the first office's registrar's office, newest first; the
revocations are made by a supervisor of that office, whom the loader creates.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bench.issuance import _free_port
from bench.population import Population
from bench.publishing import serving
from bench.report import percentile
from cardissuer.core.db import make_engine
from cardissuer.models import CardRecord, CardState
from cardissuer.seed import DEMO_PASSWORD

ISSUE = "/api/persons/{code}/cards"
STATUS_LIST = "1"
"""The first list: the one every bulk-loaded registry fills first (half of 2**20 cards)."""
SAMPLES = 20_000
"""Persons and cards read for the requests to use (each at most once where it changes)."""


@dataclass(frozen=True, slots=True)
class Served:
    """One registry as the service serves it."""

    size: int
    client: httpx.Client
    port: int
    registrar: str
    supervisor: str
    codes: list[str]
    serials: list[str]
    people: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Concurrent:
    """One round of concurrent issuance."""

    size: int
    clients: int
    cards_per_s: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "clients": self.clients,
            "cards_per_s": self.cards_per_s,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": self.errors,
        }


SINGLE = (
    "get person",
    "duplicate check (409)",
    "status list, unchanged (200)",
    "status list, unchanged (304)",
    "bundle, unchanged (200)",
    "bundle, unchanged (304)",
    "issue a card (re-issue)",
    "revoke a card",
    "bundle after a revocation (200)",
)


@dataclass(frozen=True, slots=True)
class Registry:
    """What :mod:`bench.scale` hands over: a loaded, migrated database and its workspace."""

    size: int
    url: str
    workspace: Path
    population: Population


def measure(
    registries: list[Registry], *, repeats: int, clients: int, budget: float, log_dir: Path
) -> tuple[dict[tuple[str, int], list[float]], list[Concurrent]]:
    """Milliseconds per request of each kind of :data:`SINGLE` by size, and the concurrent
    issuance rounds."""
    with contextlib.ExitStack() as stack:
        served = [
            stack.enter_context(_serve(registry, log_dir / f"service-{registry.size}.log"))
            for registry in registries
        ]
        timings = _single(served, repeats=repeats)
        rounds = [
            _concurrent(registry, clients=clients, budget=budget)
            for _ in range(2)
            for registry in served
        ]
    return timings, rounds


@contextlib.contextmanager
def _serve(registry: Registry, log: Path) -> Iterator[Served]:
    port = _free_port()
    engine = make_engine(registry.url)
    try:
        codes, serials, people = _samples(engine, registry.population)
    finally:
        engine.dispose()
    with (
        serving(registry.workspace, registry.url, port, log),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120.0) as client,
    ):
        users = registry.population.usernames
        yield Served(
            registry.size,
            client,
            port,
            login(client, users["registrar"]),
            login(client, users["supervisor"]),
            codes,
            serials,
            people,
        )


def _samples(
    engine: Engine, population: Population
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Codes of the first office's newest persons (the newer half: re-issued), serials of
    the current cards of the older half (revoked: never a card a re-issue superseded), and
    the details a duplicate registration copies; one read, before the clock starts."""
    office = population.offices[0]
    with engine.connect() as connection:
        people = connection.execute(
            text(
                "SELECT id, code, family_name, given_names, native_name, chinese_name,"
                " nationality, birth_date, sex FROM person WHERE office_id = :office"
                " ORDER BY id DESC LIMIT :limit"
            ),
            {"office": office, "limit": SAMPLES},
        ).all()
        newer = people[: len(people) // 2]
        boundary = newer[-1].id if newer else 0
        serials = list(
            connection.execute(
                select(CardRecord.serial)
                .where(
                    CardRecord.office_id == office,
                    CardRecord.state == CardState.ACTIVE,
                    col(CardRecord.person_id) < boundary,
                )
                .order_by(col(CardRecord.person_id).desc())
                .limit(SAMPLES)
            ).scalars()
        )
    details = [
        {
            "family_name": row.family_name,
            "given_names": row.given_names,
            "native_name": row.native_name,
            "chinese_name": row.chinese_name,
            "nationality": row.nationality,
            "birth_date": _date(row.birth_date),
            "sex": row.sex,
        }
        for row in people
    ]
    return [row.code for row in newer], serials, details


def _date(value: int) -> str:
    return f"{value // 10000:04d}-{value // 100 % 100:02d}-{value % 100:02d}"


def login(client: httpx.Client, username: str) -> str:
    """A bench officer's session token (the client keeps no cookie: requests send the token)."""
    response = client.post(
        "/api/auth/login", json={"username": username, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    client.cookies.clear()
    return str(response.json()["token"])


_Step = Callable[[], httpx.Response]


def _single(served: list[Served], *, repeats: int) -> dict[tuple[str, int], list[float]]:
    timings: dict[tuple[str, int], list[float]] = {}
    steps = {registry.size: _steps(registry) for registry in served}
    for kind in SINGLE:
        if kind == "bundle after a revocation (200)":
            continue  # timed with "revoke a card", below
        for registry in served:
            for _ in range(2):  # warm-up: caches, prepared statements, the first signing
                steps[registry.size][kind]()
        for _ in range(repeats):
            for registry in served:
                if kind == "revoke a card":
                    revoke, bundle = (
                        _timed(steps[registry.size][kind]),
                        _timed(steps[registry.size]["bundle after a revocation (200)"]),
                    )
                    timings.setdefault((kind, registry.size), []).append(revoke)
                    timings.setdefault(
                        ("bundle after a revocation (200)", registry.size), []
                    ).append(bundle)
                else:
                    timings.setdefault((kind, registry.size), []).append(
                        _timed(steps[registry.size][kind])
                    )
    return timings


def _timed(step: _Step) -> float:
    started = perf_counter()
    step()
    return (perf_counter() - started) * 1000


def _steps(served: Served) -> dict[str, _Step]:
    """Each kind of request as a call that checks its answer's status."""
    client = served.client
    officer = {"Authorization": f"Bearer {served.registrar}"}
    supervisor = {"Authorization": f"Bearer {served.supervisor}"}
    codes, reissue = itertools.cycle(served.codes), iter(served.codes)
    serials = iter(served.serials)
    people = itertools.cycle(served.people)
    passports = itertools.count(1)
    tags: dict[str, str] = {}

    def expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
        if response.status_code != status:
            raise RuntimeError(
                f"{what} at {served.size:,} persons: HTTP {response.status_code}, not {status}:"
                f" {response.text[:300]}"
            )
        return response

    def tagged(path: str) -> httpx.Response:
        response = expect(client.get(path), 200, f"GET {path}")
        tags[path] = response.headers["etag"]
        return response

    def duplicate() -> httpx.Response:
        person = next(people)
        body = {
            **person,
            "passport": {
                "number": f"D{next(passports):08d}",
                "issuing_country": person["nationality"],
            },
        }
        return expect(client.post("/api/persons", json=body, headers=officer), 409, "duplicate")

    def revoke() -> httpx.Response:
        serial = next(serials)
        return expect(
            client.post(
                f"/api/cards/{serial}/revoke", json={"reason": "bench"}, headers=supervisor
            ),
            200,
            "revoke",
        )

    def changed_bundle() -> httpx.Response:
        response = client.get("/bundle.json", headers={"If-None-Match": tags["/bundle.json"]})
        expect(response, 200, "bundle after a revocation")
        tags["/bundle.json"] = response.headers["etag"]
        return response

    status = f"/status/{STATUS_LIST}"
    return {
        "get person": lambda: expect(
            client.get(f"/api/persons/{next(codes)}", headers=officer), 200, "get person"
        ),
        "duplicate check (409)": duplicate,
        "status list, unchanged (200)": lambda: tagged(status),
        "status list, unchanged (304)": lambda: expect(
            client.get(status, headers={"If-None-Match": tags[status]}), 304, "status 304"
        ),
        "bundle, unchanged (200)": lambda: tagged("/bundle.json"),
        "bundle, unchanged (304)": lambda: expect(
            client.get("/bundle.json", headers={"If-None-Match": tags["/bundle.json"]}),
            304,
            "bundle 304",
        ),
        "issue a card (re-issue)": lambda: expect(
            client.post(ISSUE.format(code=next(reissue)), json={}, headers=officer), 201, "issue"
        ),
        "revoke a card": revoke,
        "bundle after a revocation (200)": changed_bundle,
    }


def _concurrent(served: Served, *, clients: int, budget: float) -> Concurrent:
    """``clients`` connections issue cards (re-issues, the persons in turn, as often as the
    time allows) for ``budget`` seconds."""
    rounds = 1 + int(budget * 2000) // max(len(served.codes), 1)  # more than 2,000 cards/s
    job = {
        "host": "127.0.0.1",
        "port": served.port,
        "headers": {"Authorization": f"Bearer {served.registrar}"},
        "method": "POST",
        "paths": [ISSUE.format(code=code) for code in served.codes] * rounds,
        "clients": clients,
        "budget_s": budget,
        "timeout_s": 60.0,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=budget + 180,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    latencies = [seconds * 1000 for status, seconds in result["latencies"] if status == 201]
    errors: dict[str, int] = dict(result["errors"])
    for status, _ in result["latencies"]:
        if status != 201:
            errors[str(status)] = errors.get(str(status), 0) + 1
    if not latencies:
        raise RuntimeError(f"no card issued by {clients} clients: {errors}")
    return Concurrent(
        served.size,
        clients,
        len(latencies) / float(result["wall_s"]),
        statistics.median(latencies),
        percentile(latencies, 0.99),
        errors,
    )
