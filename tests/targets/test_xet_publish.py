"""Publishing on the Xet path, the Hub's: faults on the Xet endpoints are retried, a Hub without Xet
storage is published to through LFS, and hf_xet's report is what a publish says it sent."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from hubpress.settings import Settings
from hubpress.targets.plan import StagedFile, git_blob_oid
from hubpress.targets.publish import open_target, publish_files
from tests.conftest import WRITE_TOKEN, requires_xet
from tests.hubserver import HubServer

pytestmark = requires_xet


def stage(tmp, path, data: bytes) -> StagedFile:
    src = tmp / "src" / path.replace("/", "__")
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    return StagedFile(path, hashlib.sha256(data).hexdigest(), len(data), str(src), git_blob_oid(data))


def test_5xx_on_the_xet_path_complete_with_one_commit(hub, tmp_path, write_token):
    name = f"alice/xet5xx-{uuid.uuid4().hex[:8]}"
    target = open_target(name, "dataset", Settings())
    files = [stage(tmp_path, f"data/{i}.bin", os.urandom(150_000)) for i in range(3)]
    hub.arm_fault("preupload", "502", count=2)
    hub.arm_fault("xet_write_token", "503", count=1, retry_after=0)
    hub.arm_fault("commit", "503", count=1, retry_after=0)
    out = publish_files(target, files, target_name=name, message="ours")
    assert sorted(f.kind for f in hub.stats.faults) == ["502", "502", "503", "503"]
    assert out.commit and hub.head("dataset", name) == out.commit
    titles = [c["title"] for c in hub.commit_history("dataset", name) if c["title"] != "initial commit"]
    assert titles == ["ours"]
    for f in files:
        assert hashlib.sha256(hub.read_file("dataset", name, f.path)).hexdigest() == f.sha256
    assert hub.stats.requests["lfs_batch"] == 0  # the "already held" question is not asked on Xet
    result = out.to_dict()
    assert result["transfer"] == "xet" and result["already_present_files"] == []
    assert result["uploaded_bytes"] == 450_000 and 450_000 <= result["sent_bytes"] < 460_000


def test_a_hub_without_xet_storage_is_published_to_through_lfs(tmp_path, write_token, caplog):
    """An older or self-hosted Hub answers no Xet write token (404): the upload goes through LFS,
    said once in one line, and later uploads to that Hub take LFS without asking again."""
    with HubServer(tmp_path / "old-hub", tokens={WRITE_TOKEN: ("alice", "write")}, xet=False) as old:
        settings = Settings(hub_endpoint=old.url)
        published = []
        for n in range(2):
            name = f"alice/noxet-{uuid.uuid4().hex[:8]}"
            files = [stage(tmp_path / str(n), "w.bin", os.urandom(50_000))]
            out = publish_files(open_target(name, "model", settings), files, target_name=name, message="ours")
            assert out.commit == old.head("model", name) and out.to_dict()["transfer"] == "lfs"
            assert old.read_file("model", name, "w.bin") == Path(files[0].source).read_bytes()
            published.append(name)
        said = [r.getMessage() for r in caplog.records if "does not serve Xet storage" in r.getMessage()]
        assert len(said) == 1 and old.url in said[0] and "through LFS" in said[0], said
        assert WRITE_TOKEN not in said[0]
        assert old.stats.requests["lfs_upload"] == 2 and old.stats.commits == 2
        assert old.stats.requests["not_found"] == 1  # the Xet write token, asked once
