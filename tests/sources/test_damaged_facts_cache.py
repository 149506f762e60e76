"""A damaged or hand-edited entry of the file-facts cache (text that is not JSON, JSON that is
not an object, a width as text, a prompt's text that is not base64) is no answer: the file is
read again, by the night's scan and by the chunked lookups alike, never a traceback."""

from __future__ import annotations

import json
import sqlite3

import pytest

from hubpress.sources import validation
from hubpress.sources.facts_cache import FileJob
from hubpress.sources.validation import validate_files
from hubpress.storage.hashcache import HashCache
from tests.sources.test_validation import png


def _job(path, kind="image") -> FileJob:
    st = path.stat()
    return FileJob(path.name, str(path), st.st_size, f"{st.st_mtime_ns}+{st.st_ctime_ns}:{st.st_ino}", kind)


def _image_width_as_text(info: dict) -> str:
    return json.dumps({**info, "width": "4", "height": "4"})


DAMAGES = {
    "not JSON": lambda info: "{not json",
    "not an object": lambda info: "[1, 2]",
    "a width as text": _image_width_as_text,
    "a prompt that is not base64": lambda info: json.dumps({**info, "text_b64": "%%%"}),
}


@pytest.mark.parametrize("by_scan", [True, False], ids=["scan", "chunks"])
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_entry_is_read_again(tmp_path, monkeypatch, damage, by_scan):
    root = tmp_path / "src"
    root.mkdir()
    (root / "a.png").write_bytes(png((4, 4)))
    (root / "a.txt").write_text("a prompt")
    jobs = [_job(root / "a.png"), _job(root / "a.txt", "prompt")]
    cache = HashCache(tmp_path / "c.sqlite")
    monkeypatch.setattr(validation, "SCAN_FROM", 1 if by_scan else 10**9)
    first = validate_files(jobs, root=str(root), cache=cache, workers=1, decode=False)
    assert first.stats.files_read == 2
    kind = "prompt" if "prompt" in damage else "image"
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        uri, info = db.execute(
            "SELECT uri, info FROM facts WHERE info LIKE ?", (f'%"kind": "{kind}"%',)
        ).fetchone()
        db.execute("UPDATE facts SET info=? WHERE uri=?", (DAMAGES[damage](json.loads(info)), uri))
    db.close()

    again = validate_files(jobs, root=str(root), cache=cache, workers=1, decode=False)

    assert again.stats.files_read == 1
    assert again.facts == first.facts
