"""A commit whose answer was lost is looked for in the revision's history (hub_commit._carrying):
that history is an answer of the Hub too. tests/hubproxy.py in front of the test Hub loses the
commit's answer, then gives a history whose `Link: rel="next"` is the page just read, or whose
every page is the same page: hubpress reads only back to the planned parent, one page when the
commit is on it, and a history that repeats itself is one line, never read forever."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from hubpress.errors import PublishError
from hubpress.settings import Settings
from hubpress.targets.plan import StagedFile, git_blob_oid
from hubpress.targets.publish import open_target, publish_files

COMMIT = r"^POST /api/datasets/alice/[^/]+/commit/"
HISTORY = r"^GET /api/datasets/alice/[^/]+/commits/"


def staged(tmp_path, data: bytes) -> list[StagedFile]:
    path = tmp_path / f"{hashlib.sha256(data).hexdigest()[:8]}.bin"
    path.write_bytes(data)
    return [StagedFile("a.bin", hashlib.sha256(data).hexdigest(), len(data), str(path), git_blob_oid(data))]


@pytest.fixture
def through_proxy(hub_proxy, write_token, monkeypatch):
    monkeypatch.setenv("HUBPRESS_HUB_ENDPOINT", hub_proxy.url)
    name = f"alice/history-{uuid.uuid4().hex[:8]}"
    return name, open_target(name, "dataset", Settings())


def history_reads(hub_proxy) -> int:
    return sum(1 for _, line in hub_proxy.fired if "/commits/" in line)


def test_a_lost_commit_is_found_on_the_first_page_of_a_history_that_never_ends(
    hub, hub_proxy, through_proxy, tmp_path
):
    name, target = through_proxy
    publish_files(target, staged(tmp_path, b"\0" * 100), target_name=name, message="base")
    hub_proxy.lose_answer(COMMIT)
    hub_proxy.link_loop(HISTORY, count=300)  # before: all 300 pages were read, then the real one
    out = publish_files(target, staged(tmp_path, b"\0" * 200), target_name=name, message="ours")
    assert out.commit == hub.head("dataset", name)
    titles = [c["title"] for c in hub.commit_history("dataset", name) if c["title"] != "initial commit"]
    assert titles == ["ours", "base"]  # landed once, and recognised
    assert history_reads(hub_proxy) == 1, hub_proxy.fired


def test_a_history_that_repeats_its_page_is_one_line(hub, hub_proxy, through_proxy, tmp_path):
    """The commit is not on the page, and the page's next link is itself: the second page names
    the same commit again, which ends the read."""
    name, target = through_proxy
    publish_files(target, staged(tmp_path, b"\0" * 100), target_name=name, message="base")
    other = {"id": "a" * 40, "title": "x", "message": "y", "authors": [], "date": "2026-01-01T00:00:00Z"}
    link = {"Link": f'<{hub_proxy.url}/api/datasets/{name}/commits/main?p=1>; rel="next"'}
    hub_proxy.lose_answer(COMMIT)
    hub_proxy.answer(HISTORY, 200, [other], headers=link, count=300)
    with pytest.raises(PublishError) as info:  # the history's reader, or the transport's refusal
        publish_files(target, staged(tmp_path, b"\0" * 200), target_name=name, message="ours")
    line = str(info.value)
    assert "\n" not in line and "twice" in line, line
    assert history_reads(hub_proxy) <= 4, hub_proxy.fired  # two pages a read, at most two reads
