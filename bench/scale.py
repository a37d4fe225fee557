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
import dataclasses
import itertools
import json
import logging
import shutil
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlmodel import Session

from bench import scale_service
from bench.issuance import _postgres_admin_url, _postgres_database, _postgres_problem
from bench.population import RARE_CHINESE_NAME, Population, load
from bench.report import Check, Section, Table, percentile, ratio
from bench.scale_service import login
from cardissuer.core.config import Settings
from cardissuer.core.db import make_engine
from cardissuer.core.migrations import upgrade
from cardissuer.main import create_app
from cardissuer.services import search
from cardissuer.services.cards import expire_cards

FULL_SMALL = 10_000
QUICK_SMALL = 2_000
FULL_PERSONS = 100_000
QUICK_PERSONS = 20_000
PAGE = 20


def run(
    *,
    persons: int,
    small: int,
    seed: int,
    repeats: int,
    keep: Path | None = None,
    clients: int = 32,
    budget: float = 10.0,
) -> Section:
    """Load (or, with ``keep``, reuse) the registries and measure them; see the module."""
    section = Section("scale", "9. The registry at scale: search, list, issue, publish")
    sizes = sorted({min(small, persons), persons})
    admin_url = _postgres_admin_url()
    problem = _postgres_problem(admin_url)
    results: dict[tuple[str, str, int], list[float]] = {}
    rounds: dict[str, list[scale_service.Concurrent]] = {}
    loads: dict[str, dict[int, float]] = {}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fmcard-scale-")))
        kept = keep or folder
        kept.mkdir(parents=True, exist_ok=True)
        backends: list[tuple[str, Callable[[int, bool], str]]] = [
            ("SQLite", lambda size, fresh: _sqlite(kept / f"scale-{size}-{seed}.db", fresh))
        ]
        if problem is None:
            if keep is None:
                backends.append(
                    (
                        "PostgreSQL",
                        lambda _size, _fresh: stack.enter_context(_postgres_database(admin_url)),
                    )
                )
            else:
                backends.append(
                    (
                        "PostgreSQL",
                        lambda size, fresh: _kept_postgres(admin_url, size, seed, fresh=fresh),
                    )
                )
        else:
            section.notes.append(f"PostgreSQL skipped: {problem}")
        for name, url_of in backends:
            registries = []
            for size in sizes:
                marker = kept / f"{name.lower()}-{size}-{seed}.json"
                workspace = kept / f"ws-{name}-{size}-{seed}"
                fresh = keep is None or not marker.exists()
                if fresh:  # a registry whose load did not finish is loaded again from nothing
                    shutil.rmtree(workspace, ignore_errors=True)
                url = url_of(size, fresh)
                started = perf_counter()
                population = None if fresh else _reuse(url, marker)
                if population is None:
                    population = _load(url, size, seed=seed)
                    loads.setdefault(name, {})[size] = perf_counter() - started
                    print(
                        f"  {name}: {size:,} persons loaded in {loads[name][size]:.1f} s",
                        flush=True,
                    )
                    if keep:
                        marker.write_text(json.dumps(dataclasses.asdict(population)))
                else:
                    print(f"  {name}: {size:,} persons reused from {marker}", flush=True)
                registries.append(_Registry(size, url, workspace, population))
            for (kind, size), timings in _measure(registries, repeats=repeats).items():
                results[(kind, name, size)] = timings
            print(f"  {name}: searches measured; now the service's other requests", flush=True)
            single, concurrent = scale_service.measure(
                [
                    scale_service.Registry(r.size, r.url, r.workspace, r.population)
                    for r in registries
                ],
                repeats=repeats,
                clients=clients,
                budget=budget,
                log_dir=folder,
            )
            for (kind, size), timings in single.items():
                results[(kind, name, size)] = timings
            rounds[name] = concurrent
    _report(section, results, sizes, loads, [name for name, _ in backends])
    _report_concurrent(section, rounds, sizes, clients)
    _check(section, results, rounds, sizes)
    return section


def _reuse(url: str, marker: Path) -> Population:
    """The population a kept registry was loaded with, its database brought to the current
    schema."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return Population(**json.loads(marker.read_text()))


def _sqlite(path: Path, fresh: bool) -> str:
    if fresh:
        for leftover in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)
    return f"sqlite:///{path}"


def _kept_postgres(admin_url: str, size: int, seed: int, *, fresh: bool) -> str:
    """A database named for the size and seed, kept after the run (``--keep``); made anew
    when ``fresh``."""
    name = f"fmcard_scale_{size}_{seed}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if fresh:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


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
    officer = {"Authorization": f"Bearer {login(client, population.usernames['registrar'])}"}
    auditor = {"Authorization": f"Bearer {login(client, population.usernames['auditor'])}"}
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
            p99_small, p99_large = percentile(few, 0.99), percentile(many, 0.99)
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


def _report_concurrent(
    section: Section,
    rounds: dict[str, list[scale_service.Concurrent]],
    sizes: list[int],
    clients: int,
) -> None:
    """The better of each size's rounds of concurrent issuance, per database."""
    table = Table(
        f"Issuance from {clients} concurrent clients (the better of two rounds)",
        ("database", "persons", "cards/s", "p50 ms", "p99 ms", "errors"),
    )
    for backend, made in rounds.items():
        for size in sizes:
            best = _best(made, size)
            errors = ", ".join(f"{kind}: {count}" for kind, count in best.errors.items()) or "none"
            table.add(
                backend,
                f"{size:,}",
                round(best.cards_per_s),
                round(best.p50_ms, 1),
                round(best.p99_ms, 1),
                errors,
            )
    section.tables.append(table)
    section.data["concurrent"] = {
        backend: [made.to_json() for made in rounds[backend]] for backend in rounds
    }


def _best(rounds: list[scale_service.Concurrent], size: int) -> scale_service.Concurrent:
    return max((made for made in rounds if made.size == size), key=lambda made: made.cards_per_s)


SEARCHES = frozenset(
    kind
    for kind in (
        "family name, officer",
        "family name, auditor (all offices)",
        "family name typed folded (hassân), auditor",
        "rare Chinese name",
        "2-character Chinese name",
        "Cyrillic substring",
        "passport number",
        "foreigner code",
        "card serial",
        "list, first page, officer",
        "list, deep page by cursor",
    )
)
"""Searches and lists the p99 target applies to."""
OFFSET = "list, last page by offset (old)"
"""Paging by ``offset``, kept for compatibility and documented as growing with the offset
(docs/ISSUER.md): measured and shown, but outside the targets, which the cursor meets."""
SEARCH_P99_MS = {"PostgreSQL": 100.0, "SQLite": 150.0}
PUBLISHED = (
    "status list, unchanged (200)",
    "status list, unchanged (304)",
    "bundle, unchanged (200)",
    "bundle, unchanged (304)",
)
PUBLISHED_MS = 10.0
CHANGE_PUBLISHED_MS = 2000.0
MAX_GROWTH = 2.0
MIN_CONCURRENT_SHARE = 0.9


def _check(
    section: Section,
    results: dict[tuple[str, str, int], list[float]],
    rounds: dict[str, list[scale_service.Concurrent]],
    sizes: list[int],
) -> None:
    """The issue's targets, at the large size (meant for a million persons)."""
    small, large = sizes[0], sizes[-1]
    backends = list(dict.fromkeys(backend for _, backend, _ in results))
    for backend in backends:

        def at(kind: str, size: int, backend: str = backend) -> list[float]:
            return results[(kind, backend, size)]

        worst = max(SEARCHES, key=lambda kind: percentile(at(kind, large), 0.99))
        p99 = percentile(at(worst, large), 0.99)
        section.checks.append(
            Check(
                f"{backend}: every search and list, p99 at {large:,}",
                f"< {SEARCH_P99_MS[backend]:.0f} ms",
                f"{p99:.1f} ms ({worst})",
                p99 < SEARCH_P99_MS[backend],
            )
        )
        slowest = max(PUBLISHED, key=lambda kind: statistics.median(at(kind, large)))
        p50 = statistics.median(at(slowest, large))
        section.checks.append(
            Check(
                f"{backend}: unchanged status list and bundle, 200 and 304, p50 at {large:,}",
                f"< {PUBLISHED_MS:.0f} ms",
                f"{p50:.1f} ms ({slowest})",
                p50 < PUBLISHED_MS,
            )
        )
        change = percentile(at("bundle after a revocation (200)", large), 0.99)
        section.checks.append(
            Check(
                f"{backend}: bundle after a revocation, p99 at {large:,}",
                f"< {CHANGE_PUBLISHED_MS:.0f} ms",
                f"{change:.1f} ms",
                change < CHANGE_PUBLISHED_MS,
            )
        )
        if small != large:
            kinds = [
                kind
                for kind, name, size in results
                if name == backend and size == large and kind != OFFSET
            ]
            grown = max(
                kinds,
                key=lambda kind: ratio(
                    statistics.median(at(kind, large)), statistics.median(at(kind, small))
                ),
            )
            growth = ratio(statistics.median(at(grown, large)), statistics.median(at(grown, small)))
            section.checks.append(
                Check(
                    f"{backend}: growth of p50 from {small:,} to {large:,}, every request"
                    " but the old offset",
                    f"<= x{MAX_GROWTH:.1f}",
                    f"x{growth:.1f} ({grown})",
                    growth <= MAX_GROWTH,
                )
            )
            if backend in rounds:
                few, many = _best(rounds[backend], small), _best(rounds[backend], large)
                share = many.cards_per_s / few.cards_per_s
                section.checks.append(
                    Check(
                        f"{backend}: concurrent issuance at {large:,} against {small:,}",
                        f">= {MIN_CONCURRENT_SHARE:.0%} of the rate",
                        f"{many.cards_per_s:.0f}/s against {few.cards_per_s:.0f}/s"
                        f" ({share:.0%}; p99 {few.p99_ms:.0f} -> {many.p99_ms:.0f} ms)",
                        share >= MIN_CONCURRENT_SHARE,
                    )
                )
