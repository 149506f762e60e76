"""An IntakeReport rendered for people (terminal, markdown artifact) and for programs (scan --json)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hubpress.sources.models import IntakeReport, Problem
from hubpress.storage.names import shown_name


def scan_json(report: IntakeReport) -> dict[str, Any]:
    """The one object `hubpress scan --json` prints."""
    return {
        "layout": report.layout,
        "splits": {
            name: {"samples": len(m.samples), "skipped": len(m.skipped)} for name, m in report.splits.items()
        },
        "problems": [
            {"split": p.split, "sample": p.sample, "kind": p.kind, "detail": p.detail, "path": p.path}
            for p in report.problems
        ],
        "corrections": corrections_json(report),
    }


def corrections_json(report: IntakeReport) -> list[dict[str, Any]]:
    """What hubpress corrected in the published copy, as `scan --json` and a publish's result list it."""
    return [
        {"split": c.split, "sample": c.sample, "path": c.path, "from": c.from_, "to": c.to, "kind": c.kind}
        for c in report.corrections
    ]


def _format_of(name: str) -> str:
    ext = name.rpartition(".")[2].upper()
    return {"JPG": "JPEG", "TIF": "TIFF"}.get(ext, ext)


def corrections_line(corrections: list[dict[str, Any]], shown: int = 3) -> str | None:
    """One line for a person: "corrected 1 extension (sampleA.png is a JPEG)"; None when nothing
    was corrected. The format is the corrected name's extension (the bytes' real format)."""
    renamed = [c for c in corrections if c.get("kind", "extension_mismatch") == "extension_mismatch"]
    if not renamed:
        return None
    named = [f"{c['from']} is a {_format_of(c['to'])}" for c in renamed[:shown]]
    more = f", +{len(renamed) - shown} more" if len(renamed) > shown else ""
    noun = "extension" if len(renamed) == 1 else "extensions"
    return f"corrected {len(renamed):,} {noun} ({', '.join(named)}{more}); the source itself is unchanged"


def kind_counts(report: IntakeReport) -> list[tuple[str, str, int]]:
    """(severity, kind, count), errors first, most frequent first."""
    counts = Counter((p.severity, p.kind) for p in report.problems)
    return sorted(
        ((sev, kind, n) for (sev, kind), n in counts.items()), key=lambda t: (t[0] != "error", -t[2], t[1])
    )


def _line(p: Problem) -> str:
    where = shown_name(f"{p.split}/{p.sample}" if p.sample is not None else p.split)
    path = f" [{shown_name(p.path)}]" if p.path else ""  # a refused name is shown, escaped
    return f"{p.severity:7} {p.kind:20} {where}{path}: {p.detail}"


def render_text(report: IntakeReport, limit: int = 20) -> str:
    lines = [f"{report.source} ({report.layout} layout)"]
    for name, m in report.splits.items():
        lines.append(f"  {name:5}  {len(m.samples):>8,} samples kept  {len(m.skipped):>8,} skipped")
    if not report.splits:
        lines.append("  no splits")
    counts = kind_counts(report)
    if counts:
        lines.append("problems:")
        lines += [f"  {n:>8,}  {kind} ({sev})" for sev, kind, n in counts]
        shown = sorted(report.problems, key=lambda p: p.severity != "error")[:limit]
        lines.append(
            f"first {len(shown)} of {len(report.problems):,}:" if len(report.problems) > limit else "all:"
        )
        lines += [f"  {_line(p)}" for p in shown]
    else:
        lines.append("no problems")
    if report.corrections:
        lines.append(
            f"{len(report.corrections):,} correction(s) made in the published copy only "
            "(the source is unchanged; --fix-source changes it)"
        )
    return "\n".join(lines)


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: IntakeReport, limit: int = 50) -> str:
    lines = [f"# Intake of `{report.source}`", "", f"Layout: **{report.layout}**", ""]
    lines += ["| split | kept | skipped |", "|---|---:|---:|"]
    lines += [f"| {n} | {len(m.samples)} | {len(m.skipped)} |" for n, m in report.splits.items()]
    counts = kind_counts(report)
    if counts:
        lines += ["", "| problem | severity | count |", "|---|---|---:|"]
        lines += [f"| {kind} | {sev} | {n} |" for sev, kind, n in counts]
        lines += ["", f"## First {min(limit, len(report.problems))} problems", ""]
        lines += ["| split | sample | kind | path | detail |", "|---|---|---|---|---|"]
        for p in sorted(report.problems, key=lambda p: p.severity != "error")[:limit]:
            lines.append(
                f"| {p.split} | {_md(p.sample or '')} | {p.kind} | {_md(p.path or '')} | {_md(p.detail)} |"
            )
    else:
        lines += ["", "No problems."]
    if report.corrections:
        lines += ["", f"{len(report.corrections)} correction(s) (the source itself is unchanged)."]
    return "\n".join(lines) + "\n"


def problem_rows(report: IntakeReport, limit: int = 500) -> list[dict[str, Any]]:
    """Rows for a Prefect table artifact: one per problem, errors first."""
    ordered = sorted(report.problems, key=lambda p: p.severity != "error")[:limit]
    return [
        {
            "split": p.split,
            "sample": p.sample or "",
            "severity": p.severity,
            "kind": p.kind,
            "path": p.path or "",
            "detail": p.detail,
        }
        for p in ordered
    ]
