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
    # Mixing (hubpress.refresh.mix): kept rows an opt-in rule left out, and rows it published twice.
    left_out_by_mixing: int = 0
    repeated_by_mixing: int = 0
    # Editing rows kept with an empty or null prompt, published as "" (as publish-dataset does).
    empty_prompts: int = 0

    def keep(self, empty_prompt: bool = False) -> None:
        self.seen += 1
        self.kept += 1
        self.empty_prompts += empty_prompt

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
        """Rows of this backend that are not published: filtered out, or left out by mixing."""
        return sum(self.dropped.values()) + self.left_out_by_mixing

    @property
    def published(self) -> int:
        return self.kept - self.left_out_by_mixing + self.repeated_by_mixing

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend_id": self.backend_id,
            "seen": self.seen,
            "kept": self.kept,
            "published": self.published,
            "left_out_by_mixing": self.left_out_by_mixing,
            "repeated_by_mixing": self.repeated_by_mixing,
            "empty_prompts": self.empty_prompts,
            "dropped": dict(self.dropped),
            "filter_failures": dict(self.filter_failures),
            "examples": self.examples,
        }

    @classmethod
    def from_dict(cls, counts: dict[str, Any]) -> RefreshReport:
        return cls(
            counts["backend_id"],
            seen=counts["seen"],
            kept=counts["kept"],
            dropped=Counter(counts["dropped"]),
            filter_failures=Counter(counts["filter_failures"]),
            examples={k: list(v) for k, v in counts["examples"].items()},
            left_out_by_mixing=counts.get("left_out_by_mixing", 0),
            repeated_by_mixing=counts.get("repeated_by_mixing", 0),
            empty_prompts=counts.get("empty_prompts", 0),
        )

    def to_markdown(self) -> str:
        lines = [f"**{self.backend_id}**: {self.kept} kept of {self.seen} rows", ""]
        if self.left_out_by_mixing or self.repeated_by_mixing:
            lines += [
                f"Mixing published {self.published} of them: {self.left_out_by_mixing} left out, "
                f"{self.repeated_by_mixing} repeated (the stopping rule chosen).",
                "",
            ]
        if self.empty_prompts:
            lines += [f'{self.empty_prompts} of them kept with an empty prompt (published as "").', ""]
        if self.filter_failures:
            lines += ["| filter | rows failing | example source rows |", "|---|---|---|"]
            for reason, count in self.filter_failures.most_common():
                lines.append(f"| {reason} | {count} | {', '.join(map(str, self.examples.get(reason, [])))} |")
        return "\n".join(lines)
