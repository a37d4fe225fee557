"""``python -m bench``: run the sections, print their tables, optionally write JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from time import perf_counter
from types import ModuleType
from typing import Any

from bench import portrait as portraits
from bench import signing, statuslist, verification
from bench.report import Section, Table
from bench.world import build_world, make_samples

SECTIONS = (
    "verify",
    "qr",
    "status",
    "sign",
    "issue",
    "render",
    "audit",
    "capture",
    "scale",
    "live",
    "publish",
    "portal",
)
PACKAGES = (
    "fmcard",
    "cryptography",
    "pyjwt",
    "joserfc",
    "segno",
    "pillow",
    "numpy",
    "sqlalchemy",
    "psycopg",
    "fastapi",
    "uvicorn",
    "httpx",
)


@dataclass(frozen=True, slots=True)
class Settings:
    """How much work a run does."""

    cards: int
    portrait_cards: int
    repeats: int
    min_time: float
    status_repeats: int
    reference_codecs: bool


FULL = Settings(
    cards=500,
    portrait_cards=100,
    repeats=7,
    min_time=0.05,
    status_repeats=3,
    reference_codecs=True,
)
QUICK = Settings(
    cards=90,
    portrait_cards=30,
    repeats=3,
    min_time=0.01,
    status_repeats=1,
    reference_codecs=False,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="fmcard benchmarks: verify, QR size, status, sign, issue, render, publish",
    )
    parser.add_argument("--quick", action="store_true", help="smaller run for CI (about 30 s)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument("--seed", type=int, default=20261122, help="seed for cards and lists")
    parser.add_argument(
        "--audit-entries",
        type=int,
        metavar="N",
        help="entries in the audit section's log (default 200,000; quick: 20,000)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, from {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--persons",
        type=int,
        metavar="N",
        help="scale section: the large registry's size (default 100,000; 20,000 with --quick)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help=(
            "scale section: keep the loaded registries (SQLite files in DIR, PostgreSQL"
            " databases fmcard_scale_<persons>_<seed>) and reuse them on the next run"
        ),
    )
    args = parser.parse_args(argv)
    if args.persons is not None and args.persons < 1:
        parser.error("--persons must be at least 1")
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    return args


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": _load_average(),
        "packages": versions,
    }


def _load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: a busy machine explains noisy figures."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):  # not on every platform
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    started = perf_counter()
    env = environment()
    print(f"fmcard benchmarks ({'quick' if args.quick else 'full'} run, seed {args.seed})")
    print(
        f"Python {env['python']} on {env['platform']}, {env['cpus']} CPUs, "
        f"load average {env['load_average']}; "
        + ", ".join(f"{name} {version}" for name, version in env["packages"].items() if version)
    )
    print()

    rng = random.Random(args.seed)
    world = build_world(rng)
    portrait = portraits.choose(portraits.SAMPLE_PHOTO.read_bytes())
    samples = make_samples(world, rng, settings.cards)
    portrait_samples = make_samples(world, rng, settings.portrait_cards, portrait=portrait.data)
    print(
        f"world: {len(samples)} distinct cards + {len(portrait_samples)} with a "
        f"{len(portrait.data)} B {portrait.media_type} portrait ({portrait.source}), "
        f"built in {perf_counter() - started:.1f} s"
    )
    print()

    sections: list[Section] = []
    for name in args.only:
        section_start = perf_counter()
        if name == "verify":
            section = verification.run(
                world,
                samples,
                portrait_samples,
                repeats=settings.repeats,
                min_time=settings.min_time,
            )
        elif name == "qr":
            section = _optional_section(
                "qr_size", "2. QR size", "qrsize", SEGNO_HINT, lambda m: m.run(world)
            )
        elif name == "status":
            section = statuslist.run(
                world,
                seed=args.seed,
                repeats=settings.status_repeats,
                reference_codecs=settings.reference_codecs,
            )
        elif name == "render":
            section = _optional_section(
                "render",
                "6. Rendering the card",
                "render",
                EXTRAS_HINT,
                lambda m: m.run(portrait_samples, quick=args.quick),
            )
        elif name == "capture":
            section = _optional_section(
                "capture",
                "8. Decoding the QR as a camera sees it",
                "capture",
                EXTRAS_HINT,
                lambda m: m.run(
                    samples, portrait_samples, per_type=3 if args.quick else 12, world=world
                ),
            )
        elif name == "audit":
            section = _optional_section(
                "audit",
                "7. The audit log",
                "auditlog",
                EXTRAS_HINT,
                lambda m: m.run(entries=args.audit_entries or (20_000 if args.quick else 200_000)),
            )
        elif name == "scale":
            section = _optional_section(
                "scale",
                "9. The registry at scale: search and list",
                "scale",
                EXTRAS_HINT,
                lambda m: _run_scale(
                    m, args.persons, quick=args.quick, seed=args.seed, keep=args.keep
                ),
            )
        elif name == "live":
            section = _optional_section(
                "live",
                "10. Live presentations (phone cards)",
                "live",
                SEGNO_HINT,
                lambda m: m.run(
                    world, portrait_samples, repeats=settings.repeats, min_time=settings.min_time
                ),
            )
        elif name == "issue":
            section = _optional_section(
                "issuance",
                "5. Issuance",
                "issuance",
                EXTRAS_HINT,
                lambda m: m.run(
                    samples,
                    plan=m.QUICK_PLAN if args.quick else m.FULL_PLAN,
                    seed=args.seed,
                    repeats=settings.repeats,
                ),
            )
        elif name == "portal":
            section = _optional_section(
                "portal",
                "13. Online applications: submit and approve",
                "portal",
                EXTRAS_HINT,
                lambda m: m.run(quick=args.quick, seed=args.seed),
            )
        elif name == "publish":
            section = _optional_section(
                "publish",
                "11. Publishing for counters",
                "publishing",
                EXTRAS_HINT,
                lambda m: m.run(plan=m.QUICK_PLAN if args.quick else m.FULL_PLAN, seed=args.seed),
            )
        else:
            section = signing.run(
                world,
                samples,
                portrait_samples,
                repeats=settings.repeats,
                min_time=settings.min_time,
            )
        section.seconds = perf_counter() - section_start
        sections.append(section)
        print(section.render())
        print(flush=True)

    summary = Table("== Summary of targets ==", ("section", "check", "target", "measured", ""))
    for section in sections:
        for check in section.checks:
            summary.add(
                section.title.split(".")[0], check.name, check.target, check.measured, check.verdict
            )
    total = perf_counter() - started
    if summary.rows:
        print(summary.render())
    env["load_average_after"] = _load_average()
    print(f"\ntotal {total:.1f} s; load average now {env['load_average_after']}")

    if args.json is not None:
        document = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full",
            "seed": args.seed,
            "settings": {
                "cards": settings.cards,
                "portrait_cards": settings.portrait_cards,
                "repeats": settings.repeats,
                "min_time_s": settings.min_time,
                "status_repeats": settings.status_repeats,
            },
            "environment": env,
            "total_seconds": total,
            "sections": {section.key: section.to_json() for section in sections},
            "checks": [
                {"section": section.key, **check.to_json()}
                for section in sections
                for check in section.checks
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


SEGNO_HINT = "pip install segno"
EXTRAS_HINT = "pip install -e '.[dev]'"


def _optional_section(
    key: str, title: str, module: str, hint: str, run: Callable[[ModuleType], Section]
) -> Section:
    """The section ``run`` makes with ``bench.<module>``, or a note saying why it cannot run:
    the module needs what ``hint`` installs (segno, or the issuer extras)."""
    try:
        found = importlib.import_module(f"bench.{module}")
    except ImportError as exc:
        section = Section(key, title)
        section.notes.append(f"skipped: {exc} ({hint})")
        section.data["skipped"] = str(exc)
        return section
    return run(found)


def _run_scale(
    scale: ModuleType, persons: int | None, *, quick: bool, seed: int, keep: Path | None
) -> Section:
    """Section 9 at ``persons`` (default: the module's size for a quick or a full run)."""
    if persons is None:
        persons = scale.QUICK_PERSONS if quick else scale.FULL_PERSONS
    small = scale.QUICK_SMALL if quick else scale.FULL_SMALL
    result: Section = scale.run(
        persons=persons,
        small=small,
        seed=seed,
        repeats=15 if quick else 40,
        keep=keep,
        budget=4.0 if quick else 10.0,
    )
    return result
