"""What a refresh kept and left out of one backend, by reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

EXAMPLES_PER_REASON = 5


@dataclass
class RefreshReport:
    """What a refresh kept and dropped, per reason, with a few source indices as examples."""

    backend_id: str
    seen: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # by first reason
    filter_failures: Counter[str] = field(default_factory=Counter)  # every failing filter
    examples: dict[str, list[int]] = field(default_factory=dict)

    def keep(self) -> None:
        self.seen += 1
        self.kept += 1

    def drop(self, source_index: int, reasons: list[str]) -> None:
        self.seen += 1
        self.dropped[reasons[0]] += 1
        for reason in reasons:
            self.filter_failures[reason] += 1
            sample = self.examples.setdefault(reason, [])
            if len(sample) < EXAMPLES_PER_REASON:
                sample.append(source_index)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend_id": self.backend_id,
            "seen": self.seen,
            "kept": self.kept,
            "dropped": dict(self.dropped),
            "filter_failures": dict(self.filter_failures),
            "examples": self.examples,
        }

    def to_markdown(self) -> str:
        lines = [f"**{self.backend_id}**: {self.kept} kept of {self.seen} rows", ""]
        if self.filter_failures:
            lines += ["| filter | rows failing | example source rows |", "|---|---|---|"]
            for reason, count in self.filter_failures.most_common():
                lines.append(f"| {reason} | {count} | {', '.join(map(str, self.examples.get(reason, [])))} |")
        return "\n".join(lines)
