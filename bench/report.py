"""What a section hands back: printable tables, target checks and JSON-ready data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    """A plain-text table: the first column left-aligned, the others right-aligned."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(tuple(_cell(cell) for cell in cells))

    def render(self) -> str:
        widths = [
            max(len(row[i]) for row in [self.columns, *self.rows]) for i in range(len(self.columns))
        ]

        def line(row: tuple[str, ...]) -> str:
            cells = [
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            return "  ".join(cells).rstrip()

        rule = "  ".join("-" * width for width in widths)
        return "\n".join([self.title, line(self.columns), rule, *map(line, self.rows)])


@dataclass(frozen=True, slots=True)
class Check:
    """One target: what was aimed at, what was measured and whether it was met."""

    name: str
    target: str
    measured: str
    passed: bool

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "measured": self.measured,
            "passed": self.passed,
        }


@dataclass
class Section:
    """The outcome of one benchmark section."""

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def render(self) -> str:
        out = [f"== {self.title} ==", ""]
        for table in self.tables:
            out += [table.render(), ""]
        if self.checks:
            checks = Table("Targets", ("check", "target", "measured", "verdict"))
            for check in self.checks:
                checks.add(check.name, check.target, check.measured, check.verdict)
            out += [checks.render(), ""]
        out += [f"note: {note}" for note in self.notes]
        if self.notes:
            out.append("")
        out.append(f"(section took {self.seconds:.1f} s)")
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": self.seconds,
            "checks": [check.to_json() for check in self.checks],
            "notes": self.notes,
            **self.data,
        }


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def percentile(values: Sequence[float], share: float) -> float:
    """The value at ``share`` (0-1) of ``values`` in order, the nearest rank below."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
