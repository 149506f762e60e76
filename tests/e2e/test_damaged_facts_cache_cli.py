"""A night's publish through the CLI after the file-facts cache was damaged (a disk hiccup, a
hand edit): the damaged entries are no answer, the files are read again, and the night finds the
dataset unchanged, instead of a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid

import pytest

from hubpress.sources.facts_cache import CACHE_FILE
from hubpress.testdata.synth import write_dataset
from tests.e2e.test_incremental_publish import hubpress_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_publish_after_the_facts_cache_was_damaged_reads_the_files_again(hub, tmp_path):
    src = tmp_path / "src"
    write_dataset(src, samples=6, image_size=16, seed=5)
    repo = f"alice/damaged-cache-{uuid.uuid4().hex[:8]}"
    where = {"staging": tmp_path / "staging", "cache": tmp_path / "cache"}
    publish = ("publish-dataset", str(src), repo)
    first = json.loads(hubpress_cli(*publish, "--json", **where).stdout)
    with sqlite3.connect(tmp_path / "cache" / CACHE_FILE) as db:
        damaged = db.execute("UPDATE facts SET info='{not json' WHERE info IS NOT NULL").rowcount
    db.close()
    assert damaged > 0
    image = next(p for p in sorted(src.rglob("*.png")))
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))  # a new listing

    again = json.loads(hubpress_cli(*publish, "--json", **where).stdout)

    assert first["commit"] and again.get("commit") is None  # same bytes: nothing to publish
    assert not again.get("shards_sent")
