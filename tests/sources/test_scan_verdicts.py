"""The night's scan of the facts cache decides once per distinct cache entry
(facts_cache.cached_image_verdict), not once per file: what it says of a file is exactly what the
per-file rule (usable_facts over from_cache) says, for every entry, pixel limit and decode mode."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources import validation
from hubpress.sources.facts_cache import (
    FACTS_VERSION,
    FileJob,
    cached_image_verdict,
    from_cache,
    to_info,
    usable_facts,
)
from hubpress.sources.image_checks import FileFacts
from hubpress.sources.validation import validate_files
from hubpress.storage.hashcache import HashCache

SIZES = st.sampled_from([None, 0, 4, 8, 3000])


@st.composite
def entries(draw):
    """A cache entry's info as to_info writes it, sometimes from another FACTS_VERSION or kind,
    sometimes missing fields (older entries)."""
    facts = FileFacts(
        None,
        draw(st.sampled_from(["png", "jpeg", None])),
        draw(SIZES),
        draw(SIZES),
        error=draw(st.sampled_from([None, None, "image_too_large", "undecodable_image"])),
        detail=draw(st.sampled_from([None, "why"])),
        checked_pixels=draw(st.sampled_from([None, 16, 10**6])),
        orientation=draw(st.sampled_from([None, 1, 6])),
        decoded=draw(st.booleans()),
        frames=draw(st.sampled_from([None, 3])),
    )
    info = to_info(FileJob("r", "/u/r", 1, "v", "image"), facts)
    info["v"] = draw(st.sampled_from([FACTS_VERSION, FACTS_VERSION, FACTS_VERSION - 1]))
    info["kind"] = draw(st.sampled_from(["image", "image", "prompt"]))
    for gone in draw(st.lists(st.sampled_from(["decoded", "frames", "orientation", "width"]), max_size=2)):
        info.pop(gone, None)
    return info


@settings(max_examples=300, deadline=None)
@given(
    entries(), st.sampled_from([1, 16, 64, 10**6, 10**9]), st.booleans(), st.sampled_from(["a" * 64, None])
)
def test_the_verdict_per_entry_is_the_verdict_per_file(info, max_pixels, decode, sha):
    job = FileJob("train/a.png", "/src/train/a.png", 10, "1+1:2", "image")
    per_file = usable_facts(from_cache(job, sha, info), job, max_pixels, decode)
    verdict = cached_image_verdict(info, max_pixels, decode)
    assert (None if verdict is None else FileFacts(sha, *verdict)) == per_file


def test_a_scan_over_shared_entries_gives_each_file_its_own_sha(tmp_path, monkeypatch):
    """Many files sharing one entry's text (a dataset of same-sized images): each keeps its own
    sha256; a file whose entry the limit now refuses, or that is not cached, is read."""
    from tests.sources.test_validation import png

    root = tmp_path / "src"
    root.mkdir()
    (root / "small.png").write_bytes(png((4, 4)))
    (root / "big.png").write_bytes(png((40, 40)))
    jobs = []
    for name in ("small.png", "big.png"):
        st_ = (root / name).stat()
        jobs.append(
            FileJob(name, str(root / name), st_.st_size, f"{st_.st_mtime_ns}+{st_.st_ctime_ns}:{st_.st_ino}")
        )
    cache = HashCache(tmp_path / "c.sqlite")
    monkeypatch.setattr(validation, "SCAN_FROM", 1)
    first = validate_files(jobs, root=str(root), cache=cache, workers=1, decode=False)
    assert first.stats.files_read == 2
    # Same facts text, another sha: as the scan finds most files of a real dataset.
    shared = to_info(jobs[0], first.facts["small.png"])
    fake = [(f"{root}/copy{n}.png", 5, "v", f"{n:064x}", shared) for n in range(3)]
    cache.put_many(fake)
    copies = [FileJob(f"copy{n}.png", f"{root}/copy{n}.png", 5, "v") for n in range(3)]
    again = validate_files(jobs + copies, root=str(root), cache=cache, workers=1, decode=False)
    assert again.stats.files_read == 0
    assert [again.facts[f"copy{n}.png"].sha256 for n in range(3)] == [f"{n:064x}" for n in range(3)]
    assert again.facts["big.png"] == first.facts["big.png"]
    limited = validate_files(
        jobs + copies, root=str(root), cache=cache, workers=1, decode=False, max_pixels=100
    )
    assert limited.facts["big.png"].error == "image_too_large" and limited.stats.files_read == 0
    assert limited.facts["copy1.png"].sha256 == f"{1:064x}" and limited.facts["copy1.png"].error is None


def test_the_scan_finds_files_by_uri_whatever_root_their_jobs_hold(tmp_path, monkeypatch):
    """The scan indexes jobs by the path under the root, which is the relpath of every discovered
    file; a job whose relpath is not that path (a URI of its own) or whose URI is outside the
    root is found as the per-chunk lookups find it: the same facts, none read."""
    root = f"{tmp_path}/src"
    info = to_info(FileJob("r", "/u/r", 1, "v", "image"), FileFacts(None, "png", 4, 4, decoded=False))
    jobs = [
        FileJob("a.png", f"{root}/a.png", 5, "v"),  # holds the root, as discovery's do
        FileJob("b.png", f"{root}/train/b.png", 5, "v"),  # under the root, not as root + relpath
        FileJob("c.png", f"{tmp_path}/other/c.png", 5, "v"),  # outside the root
        FileJob("d.png", f"{root}/x/y/d.png", 5, "v"),
        FileJob("e.png", f"{tmp_path}/other/e.png", 5, "v"),  # root + its relpath is another file's
    ]
    cache = HashCache(tmp_path / "c.sqlite")
    cache.put_many([(job.uri, 5, "v", f"{n:064x}", info) for n, job in enumerate(jobs)])
    cache.put_many([(f"{root}/e.png", 5, "v", "f" * 64, info)])  # that other file: no job's
    monkeypatch.setattr(validation, "SCAN_FROM", 10**9)
    looked_up = validate_files(jobs, root=root, cache=cache, workers=1, decode=False)
    monkeypatch.setattr(validation, "SCAN_FROM", 1)
    monkeypatch.setattr(validation, "SCAN_ENTRIES_PER_FILE", 10)
    scanned = validate_files(jobs, root=root, cache=cache, workers=1, decode=False)
    assert scanned.stats.files_read == looked_up.stats.files_read == 0
    assert scanned.facts == looked_up.facts and len(scanned.facts) == 5
    assert [scanned.facts[job.relpath].sha256 for job in jobs] == [f"{n:064x}" for n in range(5)]
