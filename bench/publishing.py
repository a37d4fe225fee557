"""Section 11: what counters syncing cost the issuer: status list and bundle requests.

Thousands of counters fetch the bundle (or a status list) several times a day, most of them
answered ``304 Not Modified``. This section measures those requests against a service whose
status list holds many cards, on SQLite and PostgreSQL (a temporary database, as section 5).

Setup, untimed: in this process, the app (:func:`cardissuer.main.create_app`) on a fresh
database with the demo data, then ``cards`` card rows bulk-inserted into status list 1 (one
``executemany``; 1 % revoked, 0.5 % suspended, 20 % superseded, the rest active, at random
indexes), and the list's stored statuses computed from them (``statuses.rebuild``, as after
``fmcard db upgrade``; skipped by code that has no stored statuses). A child process
(``python -m bench.publishing serve``) then serves the same workspace and database with
uvicorn on 127.0.0.1, as ``fmcard serve`` does with one worker.

Timed, one keep-alive client, each request from sending to the whole response:

1. ``GET /status/1``, nothing changed (200, the whole list);
2. the same with the list's ``If-None-Match`` (304);
3. ``GET /bundle.json`` with its ``If-None-Match``, nothing changed (304);
4. ``GET /bundle.json`` right after a change: before each request one card is revoked (in
   this process, ``cards.change_state`` on the same database), so each request has a new
   list to sign and a new bundle to build.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter, sleep
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bench.issuance import _free_port, scratch_databases
from bench.report import Section, Table
from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Environment, Settings
from cardissuer.core.db import session_scope
from cardissuer.main import create_app
from cardissuer.models import CardRecord, CardState, OfficerRecord, StatusListRecord
from cardissuer.seed import seed_demo
from cardissuer.services import cards
from cardissuer.services.officers import actor_of

QUICK_CARDS = 20_000
FULL_CARDS = 200_000
STATES = [
    (CardState.REVOKED, 0.01),
    (CardState.SUSPENDED, 0.005),
    (CardState.SUPERSEDED, 0.20),
]


@dataclass(frozen=True, slots=True)
class Plan:
    cards: int
    requests: int
    changes: int


QUICK_PLAN = Plan(cards=QUICK_CARDS, requests=20, changes=5)
FULL_PLAN = Plan(cards=FULL_CARDS, requests=60, changes=20)


def run(*, plan: Plan, seed: int) -> Section:
    section = Section("publish", "11. Publishing for counters")
    table = Table(
        f"Requests against one status list of {plan.cards:,} cards (ms, one client)",
        ("database", "request", "n", "median", "p90", "max"),
    )
    section.tables.append(table)
    rng = random.Random(seed)
    for backend, url, directory, stack in scratch_databases(section):
        workspace = directory / "workspace"
        started = perf_counter()
        engine_app = create_app(Settings(workspace=workspace, database_url=url))
        stack.callback(engine_app.state.engine.dispose)
        _fill(engine_app.state.engine, issuing_context_of(engine_app), plan.cards, rng)
        setup_s = perf_counter() - started
        port = _free_port()
        with serving(workspace, url, port, directory / "service.log"):
            results = _measure(f"http://127.0.0.1:{port}", engine_app.state.engine, plan, rng)
        for name, samples in results.items():
            table.add(backend, name, len(samples), *_summary(samples))
        section.data[backend] = {
            "setup_s": round(setup_s, 1),
            **{name: _summary(samples) for name, samples in results.items()},
        }
    section.notes.append(
        "each figure is client-side latency of one request on a keep-alive connection; the "
        "bundle after a change includes signing the changed list"
    )
    return section


def _summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        round(statistics.median(ordered) * 1000, 2),
        round(p90 * 1000, 2),
        round(ordered[-1] * 1000, 2),
    )


def _fill(engine: Engine, context: Any, count: int, rng: random.Random) -> None:
    """The demo data, then ``count`` cards in list 1, and the list's stored statuses."""
    seed_demo(engine, context, environment=Environment.DEVELOPMENT)
    with session_scope(engine) as session:
        template = session.exec(select(CardRecord).order_by(col(CardRecord.id))).first()
        if template is None:
            raise RuntimeError("the demo data holds no card")
        size = session.exec(
            select(StatusListRecord.size).where(StatusListRecord.list_id == template.list_id)
        ).one()
        taken = set(
            session.exec(
                select(CardRecord.status_index).where(CardRecord.list_id == template.list_id)
            ).all()
        )
        free = [
            index for index in rng.sample(range(size), count + len(taken)) if index not in taken
        ]
        now = datetime.now(UTC).replace(microsecond=0)
        base = {
            key: value
            for key, value in template.model_dump().items()
            if key not in ("id", "serial", "status_index", "state", "idempotency_key")
        }
        rows = []
        for number, index in enumerate(free[:count]):
            draw, state = rng.random(), CardState.ACTIVE
            for candidate, share in STATES:
                if draw < share:
                    state = candidate
                    break
                draw -= share
            rows.append(
                {
                    **base,
                    "serial": f"B{number:09d}",
                    "status_index": index,
                    "state": state,
                    "state_changed_at": now,
                    "superseded_by": None,
                }
            )
        for start in range(0, len(rows), 10_000):
            session.execute(insert(CardRecord), rows[start : start + 10_000])
    try:
        from cardissuer.services.statuses import rebuild
    except ImportError:  # code without stored statuses reads the cards at each request
        return
    with session_scope(engine) as session:
        rebuild(session)


@contextmanager
def serving(workspace: Path, url: str, port: int, log_path: Path) -> Iterator[None]:
    env = {**os.environ, "FMCARD_WORKSPACE": str(workspace), "FMCARD_DATABASE_URL": url}
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bench.publishing", "serve", json.dumps({"port": port})],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(f"http://127.0.0.1:{port}", process, log_path)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = perf_counter() + 120
    with httpx.Client(base_url=base, timeout=2.0) as client:
        while perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited:\n{log_path.read_text()[-2000:]}")
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            sleep(0.1)
    raise RuntimeError("the service was not ready after 120 s")


def _measure(base: str, engine: Engine, plan: Plan, rng: random.Random) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=120.0) as client:
        first = client.get("/status/1")
        first.raise_for_status()
        bundle = client.get("/bundle.json")
        bundle.raise_for_status()
        status_tag, bundle_tag = first.headers["etag"], bundle.headers["etag"]

        def timed(name: str, count: int, request: Callable[[], httpx.Response], code: int) -> None:
            samples = []
            for _ in range(count):
                started = perf_counter()
                response = request()
                samples.append(perf_counter() - started)
                if response.status_code != code:
                    raise RuntimeError(f"{name}: HTTP {response.status_code}, not {code}")
            results[name] = samples

        timed("status list, unchanged (200)", plan.requests, lambda: client.get("/status/1"), 200)
        timed(
            "status list, unchanged (304)",
            plan.requests,
            lambda: client.get("/status/1", headers={"If-None-Match": status_tag}),
            304,
        )
        timed(
            "bundle, unchanged (304)",
            plan.requests,
            lambda: client.get("/bundle.json", headers={"If-None-Match": bundle_tag}),
            304,
        )
        serials = _active_serials(engine, plan.changes, rng)
        supervisor = _supervisor(engine)
        samples = []
        for serial in serials:
            with session_scope(engine) as session:
                cards.change_state(
                    session,
                    supervisor,
                    serial,
                    CardState.REVOKED,
                    at=datetime.now(UTC),
                    reason="bench",
                )
            started = perf_counter()
            response = client.get("/bundle.json", headers={"If-None-Match": bundle_tag})
            samples.append(perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"bundle after a change: HTTP {response.status_code}")
            bundle_tag = response.headers["etag"]
        results["bundle after a change (200)"] = samples
    return results


def _active_serials(engine: Engine, count: int, rng: random.Random) -> list[str]:
    with session_scope(engine) as session:
        serials = session.exec(
            select(CardRecord.serial)
            .where(CardRecord.state == CardState.ACTIVE, col(CardRecord.serial).startswith("B"))
            .limit(count * 20)
        ).all()
    return rng.sample(list(serials), count)


def _supervisor(engine: Engine) -> Any:
    with session_scope(engine) as session:
        officer = session.exec(
            select(OfficerRecord).where(OfficerRecord.username == "supervisor")
        ).one()
        return actor_of(officer)


def serve(config: dict[str, Any]) -> None:
    """The child: the app from the environment's settings, served as ``fmcard serve`` does."""
    import uvicorn

    uvicorn.run(
        create_app(Settings()),
        host="127.0.0.1",
        port=int(config["port"]),
        log_level="warning",
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":  # the child process of :func:`serving`
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python -m bench.publishing serve CONFIG-JSON")
