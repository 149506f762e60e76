"""Several backends with probabilities -> one mixed dataset, the same one for the same seed.

SimpleTuner picks, at each training step, a backend with probability proportional to its
`probability`. A published dataset is a fixed sequence, so the mix is planned once: at each
position a backend is drawn with those weights and its next row is taken, in order. The plan is
a pure function of (sizes, probabilities, seed, stopping), so a refresh re-run publishes the same
rows in the same order, and a changed upstream changes only what it must.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from hubpress.errors import ConfigError

Stopping = Literal["first_exhausted", "all_exhausted"]


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
    stopping: Stopping = "first_exhausted",
) -> list[tuple[str, int]]:
    """The mixed order as (backend id, row index within that backend).

    first_exhausted: stop when the drawn backend has no row left (the proportions hold exactly in
    expectation, and no row repeats). all_exhausted: keep drawing, restarting an exhausted backend
    from its first row, until every backend has been seen in full (small backends are oversampled,
    as datasets.interleave_datasets does).
    """
    unknown = set(probabilities) - set(sizes)
    if unknown:
        raise ConfigError(f"probabilities given for unknown backends {sorted(unknown)}")
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
    # Draw in blocks: one RNG call per block keeps the plan cheap for millions of rows.
    block = 4096
    while True:
        for pick in rng.choice(len(ids), size=block, p=p):
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


def apply_plan(plan: Sequence[tuple[str, int]], rows: Mapping[str, Sequence[dict]]) -> list[dict]:
    """Gather rows in plan order, tagging each with the backend it came from."""
    return [{**rows[backend][index], "backend_id": backend} for backend, index in plan]
