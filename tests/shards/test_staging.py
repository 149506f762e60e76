"""Staging: atomic, verified, sealed last; only complete and intact stages are reused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import boto3
import pytest

from hubpress.errors import SourceError
from hubpress.settings import Settings
from hubpress.shards.fingerprint import dataset_fingerprint
from hubpress.shards.shards import plan_shards, write_shard
from hubpress.shards.staging import COMPLETE_RECORD, Staging
from hubpress.sources.models import IntakeReport, SkippedSample, SplitManifest
from hubpress.storage.hashcache import HashCache, local_version
from hubpress.targets.plan import git_blob_oid
from tests.shard_helpers import make_sample


def report_for(samples, source="/data/ds") -> IntakeReport:
    splits: dict[str, SplitManifest] = {}
    for s in samples:
        splits.setdefault(s.split, SplitManifest(split=s.split)).samples.append(s)
    return IntakeReport(source=source, layout="folder", splits=splits)


@pytest.fixture
def samples(tmp_path):
    return [make_sample(tmp_path / "src", f"s{i}", controls=1 + i % 2) for i in range(4)]


def build_stage(staging: Staging, fingerprint: str, samples, tmp_path: Path):
    build_dir = staging.build_dir(fingerprint) or tmp_path / "build"
    staged = []
    for plan in plan_shards("train", samples, "10MB"):
        built = write_shard(plan, build_dir)
        staged.append(staging.add_file(fingerprint, built.path_in_repo, built.local_path, built.sha256))
    staged.append(staging.add_bytes(fingerprint, "README.md", b"# card\n"))
    staged.append(staging.add_bytes(fingerprint, "manifest.json", b'{"files": {}}\n'))
    return staging.complete(fingerprint, staged)


def local_staging(tmp_path) -> Staging:
    return Staging(str(tmp_path / "staging"), Settings(), HashCache(tmp_path / "cache.sqlite"))


def test_fingerprint_is_stable_and_follows_content(samples):
    fp = dataset_fingerprint(report_for(samples), {"max_shard_size": 500})
    assert fp == dataset_fingerprint(report_for(list(reversed(samples))), {"max_shard_size": 500})
    assert len(fp) == 32
    assert fp != dataset_fingerprint(report_for(samples), {"max_shard_size": 501})
    changed = [dataclasses.replace(samples[0], prompt="another prompt"), *samples[1:]]
    assert fp != dataset_fingerprint(report_for(changed), {"max_shard_size": 500})
    new_bytes = dataclasses.replace(samples[1].controls[0], sha256="0" * 64)
    changed = [samples[0], dataclasses.replace(samples[1], controls=[new_bytes]), *samples[2:]]
    assert fp != dataset_fingerprint(report_for(changed), {"max_shard_size": 500})
    with_skip = report_for(samples)
    with_skip.splits["train"].skipped.append(SkippedSample("bad", ["missing_prompt"]))
    assert fp != dataset_fingerprint(with_skip, {"max_shard_size": 500})


def test_a_complete_stage_is_found_with_every_file(tmp_path, samples):
    staging = local_staging(tmp_path)
    assert staging.lookup("f" * 32) is None
    staged = build_stage(staging, "f" * 32, samples, tmp_path)
    found = staging.lookup("f" * 32)
    assert found == staged
    paths = [f.path for f in found]
    assert "README.md" in paths and "manifest.json" in paths
    assert any(p.startswith("data/train-") and p.endswith(".parquet") for p in paths)
    for f in found:
        data = Path(f.source).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f.sha256 and len(data) == f.size
        assert f.source.startswith(str(tmp_path / "staging" / ("f" * 32)))
    readme = next(f for f in found if f.path == "README.md")
    assert readme.git_oid == git_blob_oid(b"# card\n")
    assert all(f.git_oid is None for f in found if f.path.endswith(".parquet"))
    # The hashes are remembered for these exact file versions: a later lookup does not re-read them.
    for f in found:
        assert staging.hash_cache.get(f.source, *local_version(f.source)) == (f.sha256, None)
    # Built in place: the shard was not copied a second time, and no temporary file is left.
    assert not [p for p in (tmp_path / "staging").rglob("*") if p.name.endswith(".tmp")]


def test_a_stage_without_its_completion_record_is_not_trusted(tmp_path, samples):
    staging = local_staging(tmp_path)
    fp = "a" * 32
    build_stage(staging, fp, samples, tmp_path)
    (tmp_path / "staging" / fp / COMPLETE_RECORD).unlink()  # as if the run died just before sealing
    assert staging.lookup(fp) is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_staged_file_is_detected(tmp_path, samples, damage):
    staging = local_staging(tmp_path)
    fp = "b" * 32
    staged = build_stage(staging, fp, samples, tmp_path)
    assert staging.lookup(fp) is not None  # hashes are now cached; damage must still be seen
    shard = Path(next(f for f in staged if f.path.endswith(".parquet")).source)
    data = bytearray(shard.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        shard.write_bytes(bytes(data))
    elif damage == "truncate":
        shard.write_bytes(bytes(data[:-10]))
    else:
        shard.unlink()
    assert staging.lookup(fp) is None


def test_a_garbled_or_foreign_record_is_ignored(tmp_path, samples):
    staging = local_staging(tmp_path)
    fp = "c" * 32
    build_stage(staging, fp, samples, tmp_path)
    record = tmp_path / "staging" / fp / COMPLETE_RECORD
    good = record.read_text()
    record.write_text("{not json")
    assert staging.lookup(fp) is None
    record.write_text(json.dumps({**json.loads(good), "fingerprint": "d" * 32}))
    assert staging.lookup(fp) is None


def test_sealing_refuses_a_stage_with_a_missing_file(tmp_path, samples):
    staging = local_staging(tmp_path)
    fp = "e" * 32
    readme = staging.add_bytes(fp, "README.md", b"x")
    ghost = dataclasses.replace(readme, path="data/train-0000.parquet")
    with pytest.raises(SourceError, match="data/train-0000.parquet"):
        staging.complete(fp, [readme, ghost])
    assert staging.lookup(fp) is None


def test_add_file_copies_from_elsewhere_and_checks_the_hash(tmp_path, samples):
    staging = local_staging(tmp_path)
    (plan,) = plan_shards("train", samples, "10MB")
    built = write_shard(plan, tmp_path / "elsewhere")
    staged = staging.add_file("1" * 32, built.path_in_repo, built.local_path, built.sha256)
    assert Path(staged.source).read_bytes() == Path(built.local_path).read_bytes()
    with pytest.raises(SourceError, match="changed while it was staged"):
        staging.add_file("2" * 32, built.path_in_repo, built.local_path, "0" * 64)
    assert not (tmp_path / "staging" / ("2" * 32) / built.path_in_repo).exists()


def test_s3_staging_round_trip(tmp_path, samples, s3):
    endpoint, bucket = s3
    staging = Staging(f"s3://{bucket}/stage", Settings(), HashCache(None))
    fp = "5" * 32
    assert staging.build_dir(fp) is None
    staged = build_stage(staging, fp, samples, tmp_path)
    assert all(f.source.startswith(f"s3://{bucket}/stage/{fp}/") for f in staged)
    assert Staging(f"s3://{bucket}/stage", Settings(), HashCache(None)).lookup(fp) == staged

    with staging.local_paths(staged) as local:
        assert set(local) == {f.path for f in staged}
        for f in staged:
            assert hashlib.sha256(Path(local[f.path]).read_bytes()).hexdigest() == f.sha256
        kept = Path(local["README.md"])
    assert not kept.exists()  # temporary copies are removed afterwards

    client = boto3.client("s3", endpoint_url=endpoint)
    shard = next(f for f in staged if f.path.endswith(".parquet"))
    client.put_object(Bucket=bucket, Key=f"stage/{fp}/{shard.path}", Body=b"short")
    assert staging.lookup(fp) is None
    with pytest.raises(SourceError, match="sha256"), staging.local_paths(staged, only=[shard.path]):
        pass

    # Without its record, an uploaded stage is invisible.
    other = "6" * 32
    build_stage(staging, other, samples, tmp_path)
    client.delete_object(Bucket=bucket, Key=f"stage/{other}/{COMPLETE_RECORD}")
    assert staging.lookup(other) is None


def test_default_location_comes_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "from-env"))
    staging = Staging(settings=Settings(), hash_cache=HashCache(None))
    assert staging.stage_uri("f" * 32) == str(tmp_path / "from-env" / ("f" * 32))


def test_discard_removes_the_stage(tmp_path, samples):
    staging = local_staging(tmp_path)
    build_stage(staging, "9" * 32, samples, tmp_path)
    staging.discard("9" * 32)
    assert staging.lookup("9" * 32) is None
    assert not [p for p in (tmp_path / "staging" / ("9" * 32)).rglob("*") if p.is_file()]
