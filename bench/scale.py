"""Section 9: the registry at scale. Search and list latencies at a small and a large size.

For each database (a fresh SQLite file, and a fresh PostgreSQL database when a server
answers) and each size, the schema is built by the migrations, :mod:`bench.population`
bulk-loads the persons with their passports, cards and grants, and the service (``create_app``,
which also gives SQLite its statistics) answers real HTTP requests through Starlette's
``TestClient``: the API's search and list, logged in as an officer of one office or as an
auditor of all. Each kind is requested ``repeats`` times after a warm-up; the table shows
p50 and p99 at both sizes and how much p50 grew. An index-backed query grows little with
the registry; a full scan grows with it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from bench.issuance import _postgres_admin_url, _postgres_database, _postgres_problem
from bench.population import RARE_CHINESE_NAME, Population, load
from bench.report import Section, Table, ratio
from cardissuer.core.config import Settings
from cardissuer.core.db import make_engine
from cardissuer.core.migrations import upgrade
from cardissuer.main import create_app
from cardissuer.seed import DEMO_PASSWORD
from cardissuer.services import search
from cardissuer.services.cards import expire_cards

FULL_SMALL = 10_000
QUICK_SMALL = 2_000
FULL_PERSONS = 100_000
QUICK_PERSONS = 20_000
PAGE = 20


def run(*, persons: int, small: int, seed: int, repeats: int) -> Section:
    section = Section("scale", "9. The registry at scale: search and list")
    sizes = sorted({min(small, persons), persons})
    admin_url = _postgres_admin_url()
    problem = _postgres_problem(admin_url)
    results: dict[tuple[str, str, int], list[float]] = {}
    loads: dict[str, dict[int, float]] = {}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fmcard-scale-")))
        backends: list[tuple[str, Callable[[int], str]]] = [
            ("SQLite", lambda size: f"sqlite:///{folder / f'scale-{size}.db'}")
        ]
        if problem is None:
            backends.append(
                ("PostgreSQL", lambda _size: stack.enter_context(_postgres_database(admin_url)))
            )
        else:
            section.notes.append(f"PostgreSQL skipped: {problem}")
        for name, url_of in backends:
            registries = []
            for size in sizes:
                url = url_of(size)
                started = perf_counter()
                population = _load(url, size, seed=seed)
                loads.setdefault(name, {})[size] = perf_counter() - started
                print(f"  {name}: {size:,} persons loaded in {loads[name][size]:.1f} s", flush=True)
                registries.append(_Registry(size, url, folder / f"ws-{name}-{size}", population))
            for (kind, size), timings in _measure(registries, repeats=repeats).items():
                results[(kind, name, size)] = timings
    _report(section, results, sizes, loads, [name for name, _ in backends])
    return section


@dataclass(frozen=True, slots=True)
class _Registry:
    size: int
    url: str
    workspace: Path
    population: Population


def _load(url: str, size: int, *, seed: int) -> Population:
    engine = make_engine(url)
    try:
        upgrade(engine)
        return load(engine, size, seed=seed)
    finally:
        engine.dispose()


_Request = tuple[dict[str, str], Callable[[], dict[str, Any]]]


def _measure(registries: list[_Registry], *, repeats: int) -> dict[tuple[str, int], list[float]]:
    """Milliseconds per request of each kind, through the running app of each size; the
    sizes take turns request by request, so a slow spell of the machine hits both."""
    timings: dict[tuple[str, int], list[float]] = {}
    with contextlib.ExitStack() as stack:
        served = []
        for registry in registries:
            app = create_app(Settings(workspace=registry.workspace, database_url=registry.url))
            stack.callback(app.state.engine.dispose)
            logging.getLogger("fmcard").setLevel(logging.WARNING)  # no line per request
            client = stack.enter_context(TestClient(app))
            served.append((registry, app, client, _requests(client, registry)))
        kinds = list(served[0][3])
        for kind in kinds:
            for _, _, client, requests in served:
                for _ in range(2):  # warm-up: caches, prepared statements
                    _get(client, *requests[kind])
            for _ in range(repeats):
                for registry, _, client, requests in served:
                    timings.setdefault((kind, registry.size), []).append(
                        _get(client, *requests[kind])
                    )
        for _ in range(repeats):
            for registry, app, _, _ in served:
                timings.setdefault((EXPIRY, registry.size), []).append(
                    _time_expiry(app.state.engine)
                )
    return timings


EXPIRY = "expiry round, none due (direct)"


def _requests(client: TestClient, registry: _Registry) -> dict[str, _Request]:
    population = registry.population
    officer = _login(client, population.usernames["registrar"])
    auditor = _login(client, population.usernames["auditor"])
    codes = itertools.cycle(population.codes or ["0000000000"])
    passports = itertools.cycle(population.passport_numbers or ["E00000001"])
    serials = itertools.cycle(population.serials or ["0000000000"])
    deep = search._Cursor(0, 2 * PAGE).encode("")
    last = max(registry.size - PAGE, 0)
    return {
        "family name, officer": (officer, lambda: {"q": "HASSAN"}),
        "family name, auditor (all offices)": (auditor, lambda: {"q": "HASSAN"}),
        "family name typed folded (hassân), auditor": (auditor, lambda: {"q": "hassân"}),
        "rare Chinese name": (auditor, lambda: {"q": RARE_CHINESE_NAME}),
        "2-character Chinese name": (auditor, lambda: {"q": "王伟"}),
        "Cyrillic substring": (auditor, lambda: {"q": "иванов"}),
        "passport number": (auditor, lambda: {"q": next(passports)}),
        "foreigner code": (auditor, lambda: {"q": next(codes)}),
        "card serial": (auditor, lambda: {"q": next(serials)}),
        "list, first page, officer": (officer, lambda: {}),
        "list, deep page by cursor": (auditor, lambda: {"cursor": deep}),
        "list, last page by offset (old)": (auditor, lambda: {"offset": last}),
    }


def _login(client: TestClient, username: str) -> dict[str, str]:
    body = {"username": username, "password": DEMO_PASSWORD}
    response = client.post("/api/auth/login", json=body)
    response.raise_for_status()
    client.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _get(
    client: TestClient, headers: dict[str, str], params: Callable[[], dict[str, Any]]
) -> float:
    query = {"limit": PAGE, **params()}
    started = perf_counter()
    response = client.get("/api/persons", headers=headers, params=query)
    elapsed = (perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET /api/persons {query}: {response.status_code} {response.text}")
    return elapsed


def _time_expiry(engine: Any) -> float:
    at = datetime(2026, 12, 1, tzinfo=UTC)  # every bulk-loaded card expires later
    with Session(engine) as session:
        started = perf_counter()
        expire_cards(session, at=at, limit=500)
        elapsed = (perf_counter() - started) * 1000
        session.rollback()
    return elapsed


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _report(
    section: Section,
    results: dict[tuple[str, str, int], list[float]],
    sizes: list[int],
    loads: dict[str, dict[int, float]],
    backends: list[str],
) -> None:
    small, large = sizes[0], sizes[-1]
    columns = (
        "kind",
        "database",
        f"p50 {small:,} ms",
        f"p50 {large:,} ms",
        "growth",
        f"p99 {small:,} ms",
        f"p99 {large:,} ms",
    )
    table = Table(f"Latency per request at {small:,} and {large:,} persons", columns)
    data: dict[str, Any] = {"sizes": sizes, "load_seconds": loads, "rows": []}
    kinds = list(dict.fromkeys(kind for kind, _, _ in results))
    for kind in kinds:
        for backend in backends:
            few, many = results[(kind, backend, small)], results[(kind, backend, large)]
            p50_small, p50_large = statistics.median(few), statistics.median(many)
            p99_small, p99_large = _percentile(few, 0.99), _percentile(many, 0.99)
            row: dict[str, Any] = {
                "kind": kind,
                "database": backend,
                "p50_small_ms": p50_small,
                "p50_large_ms": p50_large,
                "p99_small_ms": p99_small,
                "p99_large_ms": p99_large,
            }
            data["rows"].append(row)
            table.add(
                kind,
                backend,
                round(p50_small, 1),
                round(p50_large, 1),
                f"x{ratio(p50_large, p50_small):.1f}",
                round(p99_small, 1),
                round(p99_large, 1),
            )
    section.tables.append(table)
    for backend, times in loads.items():
        section.notes.append(
            f"{backend} bulk load: "
            + ", ".join(f"{size:,} persons in {seconds:.1f} s" for size, seconds in times.items())
        )
    section.data.update(data)
