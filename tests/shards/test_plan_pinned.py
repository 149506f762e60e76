"""The plan of a small fixed source is pinned: kept and skipped samples, every shard key and every
sample digest, as main computed them before the planning path was made faster (bench/
bench_plan_scale.py). A faster listing, discovery, validation or decision must not move a single
key: a key that moves rebuilds and re-sends its shard on every target that holds it."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from hubpress.settings import get_settings
from hubpress.shards.fingerprint import fingerprint_and_digests, sample_facts
from hubpress.shards.pipeline import build_options, plan_all_shards
from hubpress.shards.published import sample_digests
from hubpress.sources.intake import run_intake
from hubpress.sources.models import FileRef, IntakeReport, Sample, SplitManifest

_PNG_A = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAP0lEQVR4nAE0AMv/APjCvs+TGu0V9dPvLQQN2+E3o9IxGdLlMaAA"
    "JAeG3jmSCJUODxYKAJDQGBgHKQtVO2jhbpADFWyrYWMqAAAAAElFTkSuQmCC"
)
_PNG_B = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAP0lEQVR4nAE0AMv/AeLJCL1REwRgBoZPIgRk3dziGM/YN9Y/RDMB"
    "/0BeCcg+ERUBeaHWAtxHyVzl4y/GC4OLESq7FbEaFNYdAAAAAElFTkSuQmCC"
)


def _source(root):
    """40 samples in train.csv: two PNGs written round-robin, a non-ASCII prompt, one PNG named
    .jpg (corrected), one sample whose control is missing (skipped) and a folder with a dot."""
    for folder in ("img/target", "img/control", "img/v1.2"):
        (root / folder).mkdir(parents=True)
    rows = ["image,control,prompt"]
    for n in range(40):
        target, control = f"img/target/s{n:03d}.png", f"img/control/s{n:03d}.png"
        if n == 7:
            control = "img/control/s007.jpg"  # PNG bytes under a JPEG name
        if n == 11:
            control = "img/v1.2/s011.png"
        if n != 23:  # s023's control is named in the CSV but missing
            (root / control).write_bytes(_PNG_B if n % 2 else _PNG_A)
        (root / target).write_bytes(_PNG_A if n % 3 else _PNG_B)
        prompt = "rends-la plus claire, é ü 猫" if n == 5 else f"make s{n:03d} brighter"
        rows.append(f'{target},{control},"{prompt}"')
    (root / "train.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_a_small_source_plans_the_same_samples_shard_keys_and_digests_as_before(tmp_path):
    _source(tmp_path / "src")
    settings = get_settings({"cache_dir": str(tmp_path / "cache")})
    report = run_intake(str(tmp_path / "src"), settings=settings, workers=1)
    train = report.splits["train"]
    assert [s.id for s in train.samples] == [f"s{n:03d}" for n in range(40) if n != 23]
    assert [(s.id, s.reasons) for s in train.skipped] == [("s023", ["missing_control"])]
    assert [(c.from_, c.to) for c in report.corrections] == [("img/control/s007.jpg", "img/control/s007.png")]

    plans = plan_all_shards(report, build_options(target="./out", max_shard_size="8KB"))
    assert [(p.path_in_repo, p.num_rows, p.row_groups) for p in plans] == PINNED_PLANS
    assert hashlib.sha256(" ".join(p.key for p in plans).encode()).hexdigest() == PINNED_KEYS
    digests = json.dumps(sample_digests(report), sort_keys=True).encode()
    assert hashlib.sha256(digests).hexdigest() == PINNED_DIGESTS


@pytest.mark.parametrize("prompt", ["plain", "é ü 猫", "del \x7f here", "tab\tnewline\n\x00", '"q" \\'])
def test_a_sample_digest_is_the_sha256_of_its_facts_as_ascii_json_whatever_its_prompt(prompt):
    """The fingerprint and the digests are made in one pass, reusing the fingerprint's text when
    it is the same as the digest's: checked against the digest's definition."""
    ref = FileRef("/src/a.png", "a.png", 120, "png", "ab" * 32, 4, 4, "1+1:1")
    sample = Sample("s1", "train", prompt, [ref], None, ref)
    report = IntakeReport("/src", "csv", {"train": SplitManifest("train", [sample])})
    expected = hashlib.sha256(json.dumps(sample_facts(sample), sort_keys=True, default=str).encode())
    assert fingerprint_and_digests(report, {})[1] == {"train/s1": expected.hexdigest()[:16]}
    assert sample_digests(report) == {"train/s1": expected.hexdigest()[:16]}


# Computed by main at b3fb96c, before the planning path was made faster.
PINNED_PLANS = [
    ("data/train-da6335f6e50d39c9.parquet", 3, (3,)),
    ("data/train-14a20d0d88e3fd67.parquet", 9, (9,)),
    ("data/train-9fdbbb53afa10725.parquet", 6, (6,)),
    ("data/train-6261eed19cbec005.parquet", 10, (10,)),
    ("data/train-3747f8bfff70454c.parquet", 3, (3,)),
    ("data/train-21a67aaef9684c5c.parquet", 8, (8,)),
]
# sha256 of the six full keys, space-separated, and of the sample digests as sorted JSON.
PINNED_KEYS = "aa896ffc4bf0e71a0961df2cba645cb08328c3a33ee8ec0ead3745db46418773"
PINNED_DIGESTS = "b246bbf925308bb107bc41fb733f1058c13c13f86a5a02ac986f3a3edc0d4bb4"
