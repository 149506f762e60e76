"""Several backends with probabilities -> one mixed dataset, the same one for the same seed.

SimpleTuner picks, at each training step, a backend with probability proportional to its
`probability`, and trains on every row of every backend. A published dataset is a fixed sequence,
so the mix is planned once: at each position a backend is drawn with those weights and its next
row is taken, in order. The default rule (`all_rows`) draws among the backends that still have
rows until every row of every backend is placed once; the other rules are opt-in and leave rows
out (`first_exhausted`) or repeat them (`all_exhausted`), which `mix_counts` counts. The plan is a
pure function of (sizes, probabilities, seed, stopping), so a refresh re-run publishes the same
rows in the same order, and a changed upstream changes only what it must.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from hubpress.errors import ConfigError

Stopping = Literal["all_rows", "first_exhausted", "all_exhausted"]
DEFAULT_STOPPING: Stopping = "all_rows"
BLOCK = 4096  # draws per RNG call: one call per block keeps the plan cheap for millions of rows


def normalised_probabilities(probabilities: Mapping[str, float]) -> dict[str, float]:
    """Weights need not add up to one (SimpleTuner's don't have to); a zero weight leaves a backend out."""
    bad = {k: p for k, p in probabilities.items() if p < 0}
    if bad:
        raise ConfigError(f"negative probability for {bad}")
    total = sum(probabilities.values())
    if total <= 0:
        raise ConfigError("every backend has probability 0: nothing to mix")
    return {k: p / total for k, p in probabilities.items() if p > 0}


def mix_plan(
    sizes: Mapping[str, int],
    probabilities: Mapping[str, float],
    seed: int,
    stopping: Stopping = DEFAULT_STOPPING,
) -> list[tuple[str, int]]:
    """The mixed order as (backend id, row index within that backend).

    all_rows (the default): every row of every backend exactly once; at each position a backend
    is drawn, in proportion to its weight, among those with rows left (a backend of weight 0 comes
    after the weighted ones: SimpleTuner would still train on it). first_exhausted: stop when the
    drawn backend has no row left (the proportions hold exactly in expectation, and no row
    repeats). all_exhausted: keep drawing, restarting an exhausted backend
    from its first row, until every backend has been seen in full (small backends are oversampled,
    as datasets.interleave_datasets does).
    """
    unknown = set(probabilities) - set(sizes)
    if unknown:
        raise ConfigError(f"probabilities given for unknown backends {sorted(unknown)}")
    if stopping == "all_rows":
        return _all_rows(sizes, probabilities, seed)
    weights = normalised_probabilities({k: probabilities.get(k, 0.0) for k in sizes})
    ids = [k for k in sizes if k in weights]
    if any(sizes[k] == 0 for k in ids):
        empty = [k for k in ids if sizes[k] == 0]
        if stopping == "first_exhausted":
            return []
        ids = [k for k in ids if k not in empty]
        if not ids:
            return []
        weights = normalised_probabilities({k: weights[k] for k in ids})
    p = np.array([weights[k] for k in ids], dtype=float)
    rng = np.random.default_rng(seed)
    taken = dict.fromkeys(ids, 0)
    finished: set[str] = set()
    plan: list[tuple[str, int]] = []
    while True:
        for pick in rng.choice(len(ids), size=BLOCK, p=p):
            backend = ids[pick]
            position = taken[backend]
            if position >= sizes[backend]:
                if stopping == "first_exhausted":
                    return plan
                position = position % sizes[backend]
            plan.append((backend, position))
            taken[backend] += 1
            if taken[backend] >= sizes[backend]:
                finished.add(backend)
            if stopping == "all_exhausted" and len(finished) == len(ids):
                return plan


def _all_rows(
    sizes: Mapping[str, int], probabilities: Mapping[str, float], seed: int
) -> list[tuple[str, int]]:
    normalised_probabilities({k: probabilities.get(k, 0.0) for k in sizes})  # refuses negative or all-zero
    rng = np.random.default_rng(seed)
    left = {k: n for k, n in sizes.items() if n > 0}
    taken = dict.fromkeys(sizes, 0)
    plan: list[tuple[str, int]] = []
    while left:
        active = [k for k in left if probabilities.get(k, 0.0) > 0] or list(left)
        weights = np.array([probabilities.get(k, 0.0) or 1.0 for k in active], dtype=float)
        # Draw a block with these weights until a backend runs out; then redraw among the rest.
        for pick in rng.choice(
            len(active), size=min(BLOCK, sum(left[k] for k in active)), p=weights / weights.sum()
        ):
            backend = active[pick]
            plan.append((backend, taken[backend]))
            taken[backend] += 1
            left[backend] -= 1
            if not left[backend]:
                del left[backend]
                break
    return plan


def mix_counts(plan: Sequence[tuple[str, int]], sizes: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Per backend: rows published, kept rows the plan left out, and extra (repeated) rows."""
    published = dict.fromkeys(sizes, 0)
    distinct: dict[str, set[int]] = {k: set() for k in sizes}
    for backend, index in plan:
        published[backend] += 1
        distinct[backend].add(index)
    return {
        k: {
            "published": published[k],
            "left_out": sizes[k] - len(distinct[k]),
            "repeated": published[k] - len(distinct[k]),
        }
        for k in sizes
    }


def apply_plan(plan: Sequence[tuple[str, int]], rows: Mapping[str, Sequence[dict]]) -> list[dict]:
    """Gather rows in plan order, tagging each with the backend it came from."""
    return [{**rows[backend][index], "backend_id": backend} for backend, index in plan]
