"""Never commit an empty split: `datasets` cannot open one.

`load_dataset(repo, split=...)` raises on a split with no rows (datasets 5.2: `ArrowInvalid:
BatchSize must be greater than 0` for a file holding an empty row group, `Instruction "train"
corresponds to no data!` for a file with none), so a commit holding one would break every user
of the dataset. Both publish-dataset and refresh stop before any commit with one line naming
the counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from hubpress.errors import SourceError


class EmptySplitError(SourceError):
    """A split would be published with no rows; nothing was committed."""


def refuse_empty_splits(kept: Mapping[str, int], left_out: Mapping[str, int], what: str, hint: str) -> None:
    """Raise EmptySplitError when a split (or every split, when there is none) would hold no rows."""
    empty = sorted(name for name, count in kept.items() if count <= 0)
    if kept and not empty:
        return
    counts = (
        ", ".join(f"{name}: 0 kept, {left_out.get(name, 0)} left out" for name in empty) or "no split at all"
    )
    raise EmptySplitError(
        f"Refusing to publish an empty split ({counts}) from {what}; nothing was committed. {hint}"
    )
