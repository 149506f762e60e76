"""A local staging whose `runs` (or `shards`) folder is a symbolic link to a bigger disk, a usual
way to give staging room. Since the reads held to the listing (hubpress.storage.listed_reads),
every read of the staging's own files refused the link as "outside" the staging: a publish failed
at its first staged manifest ("Replace the link with the file itself"), and sealed shards were
ignored as unreadable and built again each run. Staging holds only what hubpress wrote there, so
its reads follow links as before; a source's reads stay held to its root."""

from __future__ import annotations

import pytest

from hubpress.settings import Settings
from hubpress.shards.staging import Staging
from hubpress.storage.files import LocalStorage
from hubpress.storage.hashcache import HashCache
from hubpress.storage.listed_reads import NotTheListedFile


def test_a_staging_folder_linked_to_another_disk_is_read(tmp_path):
    (tmp_path / "bigdisk").mkdir()
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "runs").symlink_to(tmp_path / "bigdisk", target_is_directory=True)
    staging = Staging(str(tmp_path / "staging"), Settings(), HashCache(tmp_path / "cache.sqlite"))
    staged = staging.add_bytes("runs/r1", "manifest.json", b"{}")
    assert staged.size == 2 and (tmp_path / "bigdisk" / "r1" / "manifest.json").read_bytes() == b"{}"
    assert staging.storage.read_bytes("runs/r1/manifest.json") == b"{}"

    # A source's reads are still held to its root.
    with pytest.raises(NotTheListedFile, match="outside"):
        LocalStorage(tmp_path / "staging").read_bytes("runs/r1/manifest.json")
