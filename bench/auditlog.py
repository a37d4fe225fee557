"""Section 7: the audit log at scale, on SQLite and PostgreSQL.

A registry of a million persons writes millions of audit entries. This section fills a fresh
database (through the project's migrations) with N chained entries and their signed
checkpoints (every 100 entries, the service's default), then measures what an operator and
an auditor meet:

* the full walk (``fmcard audit verify``), which grows with the log;
* the incremental walk from the checkpoint the full walk confirmed, after 1,000 new entries
  (``fmcard audit verify --incremental``): it should cost the same at any N;
* the audit page (newest entries and a deep page) as the console and the API read it now,
  from the chain head and a range of entry numbers, against ``SELECT count(*)`` (how the page
  counted before).

Entries are made with the service's own bulk append (``audit.append_many``), not through the
HTTP API: the point is the size of the log, not how it was written.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from time import perf_counter

from sqlalchemy import func
from sqlalchemy.engine import Engine, make_url
from sqlmodel import col, select

from bench.issuance import _postgres_admin_url, _postgres_database, _postgres_problem
from bench.report import Check, Section, Table
from cardissuer.core.db import make_engine, read_snapshot, session_scope
from cardissuer.core.migrations import upgrade
from cardissuer.models import AuditRecord
from cardissuer.services import audit
from keys.jwk import generate
from keys.jws import VerificationKey
from keys.signer import KeySigner

EVERY = 100  # the service's default checkpoint interval (Settings.audit_checkpoint_every)
NEW_ENTRIES = 1000
CHUNK = 5000
ACTIONS = ("person.registered", "card.issued", "grant.added", "card.revoked", "login.ok")


def _fill(engine: Engine, signer: KeySigner, count: int, *, start: int = 0) -> None:
    """Append ``count`` entries after entry ``start`` with the service's own bulk append
    (:func:`audit.append_many`: chain, checkpoints and head), a chunk a transaction."""
    policy = audit.CheckpointPolicy(signer, EVERY)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    seq = start
    while seq < start + count:
        chunk = range(seq + 1, min(seq + CHUNK, start + count) + 1)
        entries = [
            audit.AuditEntryIn(
                actor=None,
                action=ACTIONS[n % len(ACTIONS)],
                record_type="card",
                record_id=str(n),
                before={"n": n - 1},
                after={"n": n},
                at=at + timedelta(seconds=n),
            )
            for n in chunk
        ]
        with session_scope(engine) as session:
            seq = audit.append_many(session, entries, checkpoints=policy)


def _time(work: Callable[[], object], repeats: int = 3) -> float:
    """Median seconds of ``repeats`` runs of ``work``."""
    times = []
    for _ in range(repeats):
        started = perf_counter()
        work()
        times.append(perf_counter() - started)
    return median(times)


def _measure(url: str, entries: int) -> dict[str, float]:
    engine = make_engine(url)
    try:
        upgrade(engine)
        signer = KeySigner(generate())
        keys = [VerificationKey(signer.kid, signer.public_key)]
        started = perf_counter()
        _fill(engine, signer, entries)
        fill = perf_counter() - started

        def full() -> audit.ChainReport:
            with read_snapshot(engine) as session:
                return audit.verify_chain(session, keys=keys)

        started = perf_counter()
        report = full()
        full_walk = perf_counter() - started
        assert report.last_checkpoint is not None  # noqa: S101 - the log has checkpoints
        since = audit.VerifiedPoint.from_signature(report.last_checkpoint, keys=keys)
        _fill(engine, signer, NEW_ENTRIES, start=entries)

        def incremental() -> None:
            with read_snapshot(engine) as session:
                audit.verify_chain(session, keys=keys, since=since)

        def page(offset: int) -> Callable[[], object]:
            def read() -> object:
                with read_snapshot(engine) as session:
                    head = audit.head_seq(session)
                    return session.exec(
                        select(AuditRecord)
                        .where(col(AuditRecord.seq) <= head - offset)
                        .order_by(col(AuditRecord.seq).desc())
                        .limit(50)
                    ).all()

            return read

        def count() -> object:
            with read_snapshot(engine) as session:
                return session.exec(select(func.count()).select_from(AuditRecord)).one()

        return {
            "fill_s": fill,
            "full_s": full_walk,
            "incremental_s": _time(incremental),
            "page_first_ms": _time(page(0), 5) * 1000,
            "page_deep_ms": _time(page(entries // 2), 5) * 1000,
            "count_ms": _time(count, 3) * 1000,
        }
    finally:
        engine.dispose()


def run(*, entries: int) -> Section:
    section = Section("audit", f"7. The audit log at {entries:,} entries")
    admin_url = _postgres_admin_url()
    postgres_problem = _postgres_problem(admin_url)
    table = Table(
        f"Audit chain of {entries:,} entries (checkpoint every {EVERY}); "
        f"incremental walk after {NEW_ENTRIES:,} new entries",
        (
            "database",
            "fill s",
            "full walk s",
            "per 100k s",
            "incremental ms",
            "page 1 ms",
            "deep page ms",
            "count(*) ms",
        ),
    )
    results: dict[str, dict[str, float]] = {}
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fmcard-audit-")))
        urls = {"SQLite": f"sqlite:///{root / 'audit.db'}"}
        if postgres_problem is None:
            urls["PostgreSQL"] = stack.enter_context(_postgres_database(admin_url))
        else:
            where = make_url(admin_url).render_as_string(hide_password=True)
            section.notes.append(f"PostgreSQL skipped: not reachable at {where}")
        for name, url in urls.items():
            figures = results[name] = _measure(url, entries)
            table.add(
                name,
                f"{figures['fill_s']:.1f}",
                f"{figures['full_s']:.2f}",
                f"{figures['full_s'] * 100_000 / entries:.2f}",
                f"{figures['incremental_s'] * 1000:.0f}",
                f"{figures['page_first_ms']:.1f}",
                f"{figures['page_deep_ms']:.1f}",
                f"{figures['count_ms']:.1f}",
            )
            section.checks.append(
                Check(
                    f"{name}: incremental walk, {NEW_ENTRIES:,} new entries",
                    "< 1 s at any log size",
                    f"{figures['incremental_s'] * 1000:.0f} ms",
                    figures["incremental_s"] < 1.0,
                )
            )
            section.checks.append(
                Check(
                    f"{name}: audit page (deep page)",
                    "< 10 ms",
                    f"{figures['page_deep_ms']:.1f} ms",
                    figures["page_deep_ms"] < 10,
                )
            )
    section.tables.append(table)
    section.data = {"entries": entries, "every": EVERY, "new_entries": NEW_ENTRIES, **results}
    return section
