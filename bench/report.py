"""The results table (min/median/max, imgbot/old ratio, targets) and BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Row:
    """One figure: samples for each design (None when a design has no such figure)."""

    figure: str
    old: Sequence[float] | None
    new: Sequence[float] | None
    digits: int = 0
    target: str = ""
    passed: bool | None = None
    ratio: bool = True

    def cells(self) -> list[str]:
        """The row's table cells."""
        ratio = "—"
        if self.ratio and self.old and self.new:
            ratio = f"{median(self.new) / median(self.old):.3f}"
        verdict = "—" if self.passed is None else ("**pass**" if self.passed else "**FAIL**")
        return [
            self.figure,
            _spread(self.old, self.digits),
            _spread(self.new, self.digits),
            ratio,
            self.target or "—",
            verdict,
        ]


def median(samples: Sequence[float]) -> float:
    """The median."""
    return statistics.median(samples)


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _spread(samples: Sequence[float] | None, digits: int) -> str:
    if not samples:
        return "—"
    if len(samples) == 1:
        return _number(samples[0], digits)
    low, mid, high = min(samples), median(samples), max(samples)
    return f"{_number(low, digits)} / **{_number(mid, digits)}** / {_number(high, digits)}"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table of ``rows``."""
    header = [
        "figure",
        "old design (min / **median** / max)",
        "imgbot (min / **median** / max)",
        "imgbot/old (medians)",
        "target",
        "result",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def stage_table(stages: dict[str, float], latency_ms: float) -> str:
    """imgbot's mean time per stage against its mean reply latency ``latency_ms``."""
    lines = ["| imgbot stage (from its /metrics) | mean ms per message |", "| --- | --- |"]
    for stage, ms in stages.items():
        lines.append(f"| {stage} | {ms:.1f} |")
    rest = latency_ms - sum(stages.values())
    lines.append(f"| everything else: frame, progress reply, keys, links, markdown | {rest:.1f} |")
    lines.append(f"| **reply latency (mean)** | **{latency_ms:.1f}** |")
    return "\n".join(lines)


def machine() -> str:
    """One line describing the machine and the software that ran."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cores = len(os.sched_getaffinity(0))
    return (
        f"{cores} cores ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def write(path: Path, results: str, template: str) -> None:
    """Replace the results block of ``path`` (created from ``template`` if it has none)."""
    text = path.read_text() if path.exists() else template
    if START not in text or END not in text:
        text = template
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{results.strip()}\n{END}{tail}")
