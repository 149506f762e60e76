"""A manifest that differs from the target's only in the run that wrote it is not a change.

manifest.json names the flow run that published the data (`flow_run_id`). A publish whose build
found the same data already at the target keeps the target's manifest (hubpress.shards.pipeline).
Two publishes of the same data started at once both build against the old head; the one that loses
the commit race plans again against the winner's commit, and its own manifest then differs only in
`flow_run_id`: without this it committed that one field, a second commit of unchanged data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hubpress.parsers import ParseLimitError, load_json
from hubpress.targets.local import staged_text
from hubpress.targets.plan import StagedFile

RUN_FIELD = "flow_run_id"


def keep_their_manifest(
    files: list[StagedFile],
    path: str,
    their_text: str | None,
    materialise: Callable[[StagedFile], str],
    scratch: Path,
) -> list[StagedFile]:
    """`files` with the staged manifest at `path` replaced by the target's text when the two say
    the same but for the run that wrote them."""
    ours = next((f for f in files if f.path == path), None)
    if ours is None or not their_text:
        return files
    try:
        theirs = load_json(their_text, "the target's manifest.json")
    except ParseLimitError:  # said once already, where ownership read it
        return files
    if not isinstance(theirs, dict) or RUN_FIELD not in theirs:
        return files
    mine = json.loads(Path(materialise(ours)).read_text(encoding="utf-8"))
    if not isinstance(mine, dict) or mine.get(RUN_FIELD) == theirs[RUN_FIELD]:
        return files
    if {**mine, RUN_FIELD: theirs[RUN_FIELD]} != theirs:
        return files
    kept, _ = staged_text(path, their_text, scratch)
    return [kept if f.path == path else f for f in files]
