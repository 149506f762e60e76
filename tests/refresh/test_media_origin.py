"""The confused deputy: an upstream row whose image holds no bytes and a path naming a file
elsewhere (another, private repo read with the runner's token; a file of the runner's disk) must
not be read. Media comes only from the upstream repo at its pinned revision; every other spelling
is refused, reported as `media_outside_upstream`, and never published.

The hostile rows are written as a parquet file by hand (push_to_hub would embed the bytes), so the
refresh reads exactly what a hostile uploader put there, through the CLI, streaming and not."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image as PILImage

from hubpress.storage import names
from tests.conftest import HUB_URL, WRITE_TOKEN, harness_api, run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECRET_COLOUR = (201, 13, 77)


def png(colour, size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _hub_cache_copy(repo: str, sha: str) -> str:
    """Where huggingface_hub's cache keeps the private model's secret.png (it is fetched first, so
    the file exists on this machine, as it would on a runner that used that model)."""
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo, "secret.png", revision=sha, token=WRITE_TOKEN)


@pytest.fixture(scope="module")
def private_model(hub_server):
    """alice's private model repo holding secret.png: the runner's token can read it."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=HUB_URL, token=WRITE_TOKEN)
    repo = f"alice/private-model-{uuid.uuid4().hex[:6]}"
    api.create_repo(repo, private=True)
    info = api.upload_file(path_or_fileobj=png(SECRET_COLOUR), path_in_repo="secret.png", repo_id=repo)
    return repo, info.oid


def hostile_paths(upstream: str, sha: str, private: str, private_sha: str, local: str) -> dict[str, str]:
    cache_copy = _hub_cache_copy(private, private_sha)
    from huggingface_hub import constants

    upstream_snapshot = f"{constants.HF_HUB_CACHE}/datasets--{upstream.replace('/', '--')}/snapshots/{sha}"
    return {
        "other_repo": f"hf://{private}/secret.png",
        "other_repo_pinned": f"hf://{private}@{private_sha}/secret.png",
        "other_repo_as_dataset": f"hf://datasets/{private}@{private_sha}/secret.png",
        "same_repo_unpinned": f"hf://datasets/{upstream}/train/ok.png",
        "same_repo_other_revision": f"hf://datasets/{upstream}@main/train/ok.png",
        "dotdot_out_of_pinned": f"hf://datasets/{upstream}@{sha}/../../{private}/secret.png",
        "percent_encoded_dotdot": f"hf://datasets/{upstream}@{sha}/%2e%2e/%2E%2E/{private}/secret.png",
        "backslashes": f"hf://datasets/{upstream}@{sha}/..\\..\\{private}\\secret.png",
        "absolute_local": local,
        "file_url": f"file://{local}",
        "relative_local": "../" * 12 + local.lstrip("/"),
        "home_relative": "~/secret.png",
        "http_url": f"{HUB_URL}/{private}/resolve/main/secret.png",
        "cache_copy_of_other_repo": cache_copy,
        "cache_dotdot_escape": f"{upstream_snapshot}/../../../models--{private.replace('/', '--')}"
        f"/snapshots/{private_sha}/secret.png",
        "empty_segment": f"hf://datasets/{upstream}@{sha}//etc/passwd",
    }


def _hostile_parquet(paths: dict[str, str]) -> bytes:
    """One honest row (embedded bytes) then one row per hostile path (bytes null), as parquet with
    the Hugging Face features metadata `datasets` reads."""
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = [{"bytes": png((1, 2, 3)), "path": None}] + [{"bytes": None, "path": p} for p in paths.values()]
    captions = ["an honest row"] + [f"hostile {key}" for key in paths]
    table = pa.table({"image": pa.array(images, type=image), "caption": pa.array(captions)})
    features = {"image": {"_type": "Image"}, "caption": {"dtype": "string", "_type": "Value"}}
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _upstream_with() -> tuple[str, str]:
    """A dataset repo holding train/ok.png, and the sha of that first commit."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=HUB_URL, token=WRITE_TOKEN)
    repo = f"alice/hostile-rows-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo, repo_type="dataset")
    first = api.create_commit(
        repo, [CommitOperationAdd("train/ok.png", png((9, 9, 9)))], commit_message="ok", repo_type="dataset"
    )
    return repo, first.oid


@pytest.mark.parametrize("streaming", [False, True])
def test_rows_naming_files_elsewhere_are_refused_and_reported(
    hub, write_token, private_model, tmp_path, streaming
):
    from huggingface_hub import CommitOperationAdd, HfApi

    private, private_sha = private_model
    local_secret = tmp_path / "secret.png"
    local_secret.write_bytes(png(SECRET_COLOUR))
    repo, first = _upstream_with()
    # A commit's sha depends on its content, so rows cannot name the commit that holds them: the
    # hf:// spellings name the first commit (another revision) or escape from it; the pure test
    # below drives the same spellings against the pinned revision itself.
    paths = hostile_paths(repo, first, private, private_sha, str(local_secret))
    pinned = (
        HfApi(endpoint=HUB_URL, token=WRITE_TOKEN)
        .create_commit(
            repo,
            [CommitOperationAdd("data/train-00000-of-00001.parquet", _hostile_parquet(paths))],
            commit_message="rows",
            repo_type="dataset",
        )
        .oid
    )
    config = tmp_path / "multidatabackend.json"
    config.write_text(
        json.dumps(
            [
                {
                    "id": "up",
                    "type": "huggingface",
                    "dataset_name": repo,
                    "revision": pinned,
                    "caption_column": "caption",
                    "streaming": streaming,
                    "cache_dir": str(tmp_path / "cache"),
                }
            ]
        )
    )
    out = tmp_path / "out"
    # A process of its own: the warning lines go to its stderr as at a terminal (an in-process
    # run shares logging handlers bound to an earlier run's stream).
    done = subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", "refresh", str(config), str(out), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_TOKEN": WRITE_TOKEN, **harness_api()},
        timeout=600,
    )
    code, stdout, stderr = done.returncode, done.stdout, done.stderr
    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["samples"] == {"train": 1}
    assert result["skipped"] == {"train": len(paths)}
    assert "Traceback" not in stderr
    refusals = [line for line in stderr.splitlines() if "refused:" in line]
    assert refusals and all("pinned revision" in line or "leave its root" in line for line in refusals), (
        stderr
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["up"]["dropped"] == {names.MEDIA_OUTSIDE_UPSTREAM: len(paths)}
    # Nothing of the secret reached the published shards.
    from datasets import load_dataset

    published = load_dataset(str(out), split="train")
    assert [r["source_index"] for r in published] == [0]  # the honest row, alone
    for row in published:
        assert row["image"].convert("RGB").getpixel((0, 0)) != SECRET_COLOUR


def test_the_gate_allows_only_the_pinned_repo():
    sha = "a" * 40
    assert names.repo_file_url(f"hf://datasets/o/n@{sha}/train/0.png", "dataset", "o/n", sha) == "train/0.png"
    for bad in (
        f"hf://datasets/o/n@{'b' * 40}/train/0.png",
        "hf://datasets/o/n/train/0.png",
        f"hf://datasets/o/other@{sha}/x.png",
        f"hf://o/n@{sha}/x.png",
        f"hf://datasets/o/n@{sha}/a/../../x.png",
        f"hf://datasets/o/n@{sha}/a/%2e%2e/%2e%2e/x.png",
        f"hf://datasets/o/n@{sha}/a\\..\\x.png",
        f"hf://datasets/o/n@{sha}//x.png",
        f"HF://datasets/o/n@{sha}/x.png",
        f"hf://datasets/o/n@{sha}x/y.png",
        "/etc/passwd",
        "file:///etc/passwd",
        "https://example.com/x.png",
        "",
    ):
        with pytest.raises(names.UnsafeNameError) as info:
            names.repo_file_url(bad, "dataset", "o/n", sha)
        assert info.value.kind == names.MEDIA_OUTSIDE_UPSTREAM and "\n" not in str(info.value)


@pytest.mark.parametrize("streaming", [False, True])
def test_a_card_naming_data_files_of_another_repo_is_refused(hub, write_token, tmp_path, streaming):
    """The card's `configs` name the data files: a card pointing at another, private dataset would
    have it read with the runner's token and republished. Refused in one line, nothing read."""
    from datasets import Dataset
    from huggingface_hub import CommitOperationAdd, HfApi

    private = f"alice/private-ds-{uuid.uuid4().hex[:6]}"
    Dataset.from_dict({"caption": ["secret"], "image": [png(SECRET_COLOUR)]}).push_to_hub(
        private, token=WRITE_TOKEN, private=True
    )
    repo, _ = _upstream_with()
    card = (
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
        f'    path: "hf://datasets/{private}/data/*.parquet"\n---\n'
    )
    HfApi(endpoint=HUB_URL, token=WRITE_TOKEN).create_commit(
        repo, [CommitOperationAdd("README.md", card.encode())], commit_message="card", repo_type="dataset"
    )
    config = tmp_path / "multidatabackend.json"
    backend = {"id": "up", "type": "huggingface", "dataset_name": repo, "caption_column": "caption"}
    config.write_text(json.dumps([{**backend, "streaming": streaming, "cache_dir": str(tmp_path / "c")}]))
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("refresh", str(config), str(out))
    assert code == 1, stdout
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    # datasets refuses it itself; hubpress's gate (parquet_stream) stands behind it
    assert "belong" in errors[0] or "pinned revision" in errors[0], errors
    assert not out.exists()
