"""Metrics a training output logged: step -> metric -> value, from the accepted JSON shapes.

Pure: texts in, numbers out. Unreadable files or lines are reported, never fatal (they only matter
to best:METRIC selection, which then names what exists).
"""

from __future__ import annotations

import re
from typing import Any

from hubpress.parsers import MAX_METRICS_BYTES, load_json

STEP_KEYS = ("step", "global_step", "iteration", "iter")


def _record_step(record: dict[str, Any]) -> int | None:
    for key in STEP_KEYS:
        value = record.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    return None


def _numbers(record: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in record.items()
        if k not in STEP_KEYS and isinstance(v, int | float) and not isinstance(v, bool)
    }


def _records(doc: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Metric records (dicts with a step) from any of the accepted JSON shapes, and a global step."""
    if isinstance(doc, list):
        return [r for r in doc if isinstance(r, dict)], None
    if isinstance(doc, dict):
        if isinstance(doc.get("log_history"), list):  # transformers' trainer_state.json
            gs = doc.get("global_step")
            return [r for r in doc["log_history"] if isinstance(r, dict)], gs if isinstance(gs, int) else None
        if doc and all(re.fullmatch(r"\d+", str(k)) for k in doc):  # {"500": {"loss": ...}}
            return [{"step": int(k), **v} for k, v in doc.items() if isinstance(v, dict)], None
        if _record_step(doc) is not None:
            return [doc], None
    return [], None


def parse_metrics(
    texts: dict[str, bytes], problems: list[str]
) -> tuple[dict[int, dict[str, float]], int | None]:
    """step -> metric -> value from metrics files; unreadable files or lines are skipped and reported
    in `problems` (they only matter to best:METRIC, which then names what exists)."""
    metrics: dict[int, dict[str, float]] = {}
    global_step: int | None = None
    # Top-level files first, so a checkpoint's copy doesn't override the full history's values.
    for relpath in sorted(texts, key=lambda p: (p.count("/"), p)):
        try:
            text = texts[relpath].decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{relpath} is not UTF-8 text; its metrics were skipped")
            continue
        docs: list[Any] = []
        if relpath.endswith(".jsonl"):
            bad = 0
            for line in text.splitlines():
                if line.strip():
                    try:
                        docs.append(load_json(line, relpath, non_finite=True))
                    except ValueError:
                        bad += 1
            if bad:
                problems.append(f"{relpath}: {bad} line(s) are not JSON and were skipped")
        else:
            try:
                docs.append(load_json(text, relpath, max_bytes=MAX_METRICS_BYTES, non_finite=True))
            except ValueError as exc:
                problems.append(f"{exc} Its metrics were skipped.")  # names the file and what is wrong
                continue
        for doc in docs:
            records, gs = _records(doc)
            if gs is not None:
                global_step = gs if global_step is None else max(global_step, gs)
            for record in records:
                step = _record_step(record)
                if step is None:
                    continue
                values = metrics.setdefault(step, {})
                for name, value in _numbers(record).items():
                    values.setdefault(name, value)
    return dict(sorted(metrics.items())), global_step
