"""The hot rows with and without their large values: table sizes and read times.

``python -m bench.rows --persons 100000`` loads a registry in which every person has a
portrait (:data:`bench.population.PORTRAIT_BYTES`) and every card a QR text of ``--qr-chars``
characters, on SQLite and (when a server answers) PostgreSQL, and measures it twice:

* **after**: the head schema, portraits in ``person_portrait`` and texts in ``card_text``;
* **before**: the same data after ``alembic downgrade 0008_search_tiers``, which moves the
  values back into ``person.portrait`` and ``card.qr_text`` (then ``VACUUM FULL`` or
  ``VACUUM``, so that sizes are not inflated by the move).

Figures: the size of each table with its indexes (``pg_total_relation_size``; SQLite's
``dbstat``), the duplicate check's query for 500 existing (nationality, birth date) pairs
(before: whole rows, as the check read them; after: the three compared columns from
``ix_person_duplicates``), and a full scan of ``person`` and ``card``. Times are the best of
5 runs, with the median in brackets; the caches are warm in both (the whole registry fits in
memory at 100,000 persons: a larger registry pays for its size with reads from disk).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from sqlalchemy.engine import Engine

from bench.issuance import _postgres_admin_url, _postgres_database, _postgres_problem
from bench.population import load
from cardissuer.core.db import make_engine
from cardissuer.core.migrations import upgrade

TABLES = ("person", "person_portrait", "card", "card_text")
LOOKUPS = 500
REPEATS = 5
BEFORE_QUERY = "SELECT * FROM person WHERE nationality = :n AND birth_date = :b"
AFTER_QUERY = (
    "SELECT id, name_key, office_id FROM person WHERE nationality = :n AND birth_date = :b"
)


def sizes(engine: Engine) -> dict[str, int]:
    """Bytes of each table with its indexes (absent tables are left out)."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return {
                table: int(size)
                for table in TABLES
                if (size := connection.exec_driver_sql(
                    "SELECT pg_total_relation_size(to_regclass(%(t)s))", {"t": table}
                ).scalar()) is not None
            }  # fmt: skip
        rows = connection.exec_driver_sql(
            "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d JOIN sqlite_master m "
            "ON d.name = m.name GROUP BY m.tbl_name"
        ).all()
        return {str(table): int(size) for table, size in rows if table in TABLES}


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def timings(engine: Engine, query: str, pairs: list[tuple[str, int]]) -> dict[str, Any]:
    """Seconds per duplicate-check query and per full scan of ``person`` and ``card``."""
    from sqlalchemy import text

    statement = text(query)
    with engine.connect() as connection:

        def lookups() -> None:
            for nationality, birth in pairs:
                connection.execute(statement, {"n": nationality, "b": birth}).all()

        def scan(table: str) -> Callable[[], object]:
            # A column no index holds: every row of the table is read.
            column = "sex" if table == "person" else "kid"
            sql = text(f"SELECT count(*) FROM {table} WHERE {column} = 'none'")  # noqa: S608
            return lambda: connection.execute(sql).scalar()

        lookups()  # warm
        best, median = _timed(lookups)
        figures: dict[str, Any] = {"duplicate_check": (best / len(pairs), median / len(pairs))}
        for table in ("person", "card"):
            scan(table)()
            figures[f"scan_{table}"] = _timed(scan(table))
    return figures


def _vacuum(engine: Engine) -> None:
    """Rewrite the tables compactly and give the planner statistics."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM FULL ANALYZE")
        return
    engine.dispose()  # the service's engine begins every transaction itself: use sqlite3
    plain = sqlite3.connect(str(engine.url.database), isolation_level=None)
    try:
        plain.execute("VACUUM")
        plain.execute("ANALYZE")
    finally:
        plain.close()


def _downgrade(engine: Engine) -> None:
    from alembic import command

    from cardissuer.core import migrations

    config = migrations._config()
    engine.dispose()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008_search_tiers")


def measure(url: str, persons: int, qr_chars: int, seed: int) -> dict[str, dict[str, Any]]:
    engine = make_engine(url)
    try:
        upgrade(engine)
        load(engine, persons, portraits=1.0, qr_chars=qr_chars, seed=seed)
        _vacuum(engine)
        with engine.connect() as connection:
            everyone = connection.exec_driver_sql(
                "SELECT nationality, birth_date FROM person"
            ).all()
        pairs = [(str(n), int(b)) for n, b in random.Random(seed).sample(everyone, LOOKUPS)]
        after = {"sizes": sizes(engine), **timings(engine, AFTER_QUERY, pairs)}
        _downgrade(engine)
        _vacuum(engine)
        before = {"sizes": sizes(engine), **timings(engine, BEFORE_QUERY, pairs)}
    finally:
        engine.dispose()
    return {"before": before, "after": after}


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _ms(pair: tuple[float, float]) -> str:
    return f"{pair[0] * 1e3:.3f} ms ({pair[1] * 1e3:.3f})"


def report(name: str, figures: dict[str, dict[str, Any]]) -> str:
    lines = [f"## {name}", "", "| | before | after |", "|---|---:|---:|"]
    for table in TABLES:
        cells = [figures[when]["sizes"].get(table) for when in ("before", "after")]
        shown = [_mb(cell) if cell is not None else "-" for cell in cells]
        lines.append(f"| `{table}` (with indexes) | {shown[0]} | {shown[1]} |")
    for key, label in (
        ("duplicate_check", "duplicate-check query (per check)"),
        ("scan_person", "full scan of `person`"),
        ("scan_card", "full scan of `card`"),
    ):
        lines.append(f"| {label} | {_ms(figures['before'][key])} | {_ms(figures['after'][key])} |")
    return "\n".join(lines)


@contextmanager
def _sqlite(directory: Path) -> Iterator[str]:
    yield f"sqlite:///{directory / 'rows.db'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--qr-chars", type=int, default=850, help="characters of a card's text")
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args(argv)
    admin_url = _postgres_admin_url()
    with ExitStack() as stack, TemporaryDirectory() as directory:
        backends: list[tuple[str, str]] = []
        if args.only != "postgresql":
            backends.append(("SQLite", stack.enter_context(_sqlite(Path(directory)))))
        if args.only != "sqlite":
            problem = _postgres_problem(admin_url)
            if problem is None:
                backends.append(("PostgreSQL", stack.enter_context(_postgres_database(admin_url))))
            else:
                print(f"PostgreSQL skipped: {problem}")
        for name, url in backends:
            started = time.perf_counter()
            figures = measure(url, args.persons, args.qr_chars, args.seed)
            print(report(f"{name}, {args.persons:,} persons", figures))
            print(f"\n({time.perf_counter() - started:.0f} s)\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
