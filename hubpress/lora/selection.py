"""Which checkpoint of a training output to release: "latest", "step:N" or "best:METRIC[:min|max]".

The default direction is min. Names that read as higher-is-better (accuracy, psnr, ssim, iou, f1,
reward, score, ...) must say :max or :min explicitly, so that "best" never silently means "worst".
A checkpoint's value of a metric is the last one logged at or before its step and after the
previous checkpoint's step; ties go to the later checkpoint. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hubpress.errors import ConfigError, SourceError
from hubpress.lora.release import METRIC_NAMES, Checkpoint, TrainingOutput
from hubpress.lora.weights import DEFAULT_WEIGHT_NAME

HIGHER_IS_BETTER = frozenset(
    {
        "accuracy",
        "acc",
        "psnr",
        "ssim",
        "iou",
        "miou",
        "dice",
        "f1",
        "precision",
        "recall",
        "auc",
        "reward",
        "score",
    }
)
SELECT_FORMS = (
    "'latest', 'step:N' (e.g. step:1500), or 'best:METRIC[:min|max]' (e.g. best:loss, best:psnr:max)"
)


@dataclass(frozen=True, slots=True)
class Selection:
    kind: str  # "latest", "step" or "best"
    metric: str | None = None
    direction: str = "min"
    step: int | None = None


def parse_select(select: str) -> Selection:
    text = (select or "").strip()
    if text == "latest":
        return Selection("latest")
    parts = text.split(":")
    if parts[0] == "step" and len(parts) == 2 and parts[1].isdigit():
        return Selection("step", step=int(parts[1]))
    if parts[0] == "best" and len(parts) in (2, 3) and parts[1].strip():
        metric = parts[1].strip()
        if len(parts) == 3:
            if parts[2] not in ("min", "max"):
                raise ConfigError(
                    f"select={select!r}: the direction must be min or max, not {parts[2]!r}. "
                    f"Accepted forms: {SELECT_FORMS}."
                )
            return Selection("best", metric=metric, direction=parts[2])
        tokens = set(re.split(r"[^a-z0-9]+", metric.lower()))
        if tokens & HIGHER_IS_BETTER and "loss" not in tokens:
            raise ConfigError(
                f"select={select!r}: is a higher {metric!r} better? Say best:{metric}:max or "
                f"best:{metric}:min (without a direction, best means the minimum)."
            )
        return Selection("best", metric=metric, direction="min")
    raise ConfigError(f"select={select!r} is not understood. Accepted forms: {SELECT_FORMS}.")


def _usable_or_suggest(output: TrainingOutput, checkpoint: Checkpoint) -> Checkpoint:
    """`checkpoint` if it has weights; otherwise the error names the newest checkpoint that has,
    so a user whose last save was interrupted knows which `step:N` to release instead (hubpress
    never picks another checkpoint on its own: a release is the one the user chose)."""
    if checkpoint.weights is not None:
        return checkpoint
    hint = ""
    for newest in reversed(output.checkpoints):
        select = (
            _selecting(output, newest) if newest.weights is not None and newest is not checkpoint else None
        )
        if select is not None:
            hint = f" The newest checkpoint with usable weights is {newest.name}: release it with --select {select}."
            break
    raise SourceError(f"Cannot release {checkpoint.name}: {checkpoint.problem}.{hint}")


def _selecting(output: TrainingOutput, checkpoint: Checkpoint) -> str | None:
    """The --select that releases `checkpoint`, or None. The final weights carry the last step,
    which `step:N` resolves to the checkpoint folder of that step: they are `latest`."""
    if checkpoint.is_final:
        return "latest" if checkpoint is output.checkpoints[-1] else None
    if checkpoint.step is None:
        return None
    same_step = [c for c in output.checkpoints if c.step == checkpoint.step and not c.is_final]
    return f"step:{checkpoint.step}" if same_step[-1] is checkpoint else None


def _metric_at(output: TrainingOutput, metric: str, step: int, after: int | None) -> tuple[int, float] | None:
    """(logged step, value) of the last finite value logged at or before `step` and after `after`."""
    best: tuple[int, float] | None = None
    for logged, values in output.metrics.items():
        if logged > step or (after is not None and logged <= after):
            continue
        value = values.get(metric)
        if value is not None and math.isfinite(value):
            best = (logged, value)
    return best


def select_checkpoint(output: TrainingOutput, select: str = "latest") -> Checkpoint:
    """The checkpoint to release. Never falls back silently: an unusable choice is an error."""
    selection = parse_select(select)
    if not output.checkpoints:
        raise SourceError(
            f"No checkpoints in {output.root}: looked for checkpoint-<step>/ directories with "
            f"{DEFAULT_WEIGHT_NAME} and for weights at the top level."
        )
    if selection.kind == "latest":
        return _usable_or_suggest(output, output.checkpoints[-1])  # sorted by step, final last
    if selection.kind == "step":
        matches = [c for c in output.checkpoints if c.step == selection.step and not c.is_final]
        matches = matches or [c for c in output.checkpoints if c.step == selection.step]
        if not matches:
            steps = ", ".join(str(c.step) for c in output.checkpoints if c.step is not None)
            raise ConfigError(
                f"select={select!r}: no checkpoint at step {selection.step}. Steps present: {steps}."
            )
        return _usable_or_suggest(output, matches[-1])

    metric = selection.metric
    assert metric is not None
    names = output.metric_names()
    if metric not in names:
        if not output.metrics:
            looked = ", ".join(METRIC_NAMES)
            detail = f"no metrics were found (looked for {looked} at the top level and in checkpoints)"
        else:
            detail = f"metrics present: {', '.join(names)} (from {', '.join(output.metric_files)})"
        skipped = f" Skipped while reading: {'; '.join(output.problems)}." if output.problems else ""
        raise ConfigError(f"select={select!r}: no metric {metric!r} in {output.root}; {detail}.{skipped}")

    scored: list[tuple[float, int, Checkpoint]] = []
    previous: int | None = None
    for order, checkpoint in enumerate(output.checkpoints):
        if checkpoint.step is None:
            continue
        found = _metric_at(output, metric, checkpoint.step, None if checkpoint.is_final else previous)
        if not checkpoint.is_final:
            previous = checkpoint.step
        if found is not None:
            value = found[1] if selection.direction == "min" else -found[1]
            scored.append((value, -order, checkpoint))
    if not scored:
        logged = [s for s, v in output.metrics.items() if metric in v]
        steps = ", ".join(f"{c.name} (step {c.step})" for c in output.checkpoints)
        raise ConfigError(
            f"select={select!r}: {metric!r} was logged at steps {logged[0]}..{logged[-1]}, but no checkpoint "
            f"has a value logged at or before its step; checkpoints: {steps}."
        )
    scored.sort(key=lambda t: (t[0], t[1]))
    return _usable_or_suggest(output, scored[0][2])


def metric_value(output: TrainingOutput, checkpoint: Checkpoint, metric: str) -> float | None:
    """The value of `metric` that selection attributed to `checkpoint` (for reports and the card)."""
    if checkpoint.step is None:
        return None
    earlier = [
        c.step
        for c in output.checkpoints
        if not c.is_final and c.step is not None and c.step < checkpoint.step
    ]
    after = None if checkpoint.is_final or not earlier else max(earlier)
    found = _metric_at(output, metric, checkpoint.step, after)
    return found[1] if found else None
