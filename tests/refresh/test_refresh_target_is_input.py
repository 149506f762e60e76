"""A refresh never writes over what it reads.

"Refresh my dataset" reads naturally as `hubpress refresh config.json my-org/art-photos` with the
upstream's own repo as the target. That commit would replace the upstream's card (its
`data_files` then name only the filtered shards, so `load_dataset` on the upstream returns the
refreshed rows) and move the upstream's head, so every later night reads its own output again.
A local backend whose folder is, holds or lies inside a local target is the same mistake, which
publish-dataset, publish-lora and release already refuse for their sources. The CLI refuses it
before Prefect starts (exit 2, one line, as for those), and the flow refuses it again for a run
no CLI checked (a deployment run from the UI or a schedule). Another branch of the upstream repo
is a target of its own: the upstream's branch is not touched.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from huggingface_hub import HfApi
from PIL import Image

from hubpress.errors import ConfigError
from hubpress.flows.params import RefreshParams
from hubpress.flows.refresh_dataset import refresh_dataset
from tests.conftest import WRITE_TOKEN, run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")


def png(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (shade, shade, shade)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def upstream(hub) -> str:
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    name = f"alice/Art-{uuid.uuid4().hex[:8]}"
    rows = {"image": [{"bytes": png(i * 40), "path": None} for i in range(3)], "caption": ["a", "b", "c"]}
    features = Features({"image": ImageFeature(), "caption": Value("string")})
    Dataset.from_dict(rows, features=features).push_to_hub(name, token=WRITE_TOKEN)
    return name


def head_and_files(repo: str) -> tuple[str, list[str]]:
    info = HfApi(token=WRITE_TOKEN).dataset_info(repo)
    return info.sha, sorted(s.rfilename for s in info.siblings)


def hub_config(tmp_path, upstream: str, **options) -> str:
    entry = {"id": "art", "type": "huggingface", "dataset_name": upstream, "caption_column": "caption"}
    entry.update(cache_dir=str(tmp_path / "cache"), **options)
    return json.dumps([entry])


@pytest.mark.parametrize("spelling", ["same", "other-case"])
def test_the_cli_refuses_the_upstream_repo_as_the_target(tmp_cwd, upstream, write_token, spelling):
    before = head_and_files(upstream)
    target = upstream if spelling == "same" else upstream.lower()  # the Hub's names ignore case
    code, out, err = run_cli("refresh", hub_config(tmp_cwd, upstream), target)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"error: the target {target} is the upstream of backend 'art' ({upstream}, branch main): the "
        "refresh would commit over the dataset it reads. Publish to another repo, or to another branch "
        "of it (--revision)."
    ]
    assert head_and_files(upstream) == before  # no commit, no card, nothing staged on the upstream
    assert not (tmp_cwd / "cache").exists()  # nothing was downloaded: refused before the run


def test_a_run_no_cli_checked_is_refused_by_the_flow(tmp_path, upstream, write_token):
    """A deployment run (the UI's form, a schedule, `prefect deployment run`) runs the flow alone."""
    before = head_and_files(upstream)
    with pytest.raises(ConfigError, match=r"is the upstream of backend 'art'"):
        refresh_dataset(
            RefreshParams(config=hub_config(tmp_path, upstream, revision="main"), target=upstream)
        )
    assert head_and_files(upstream) == before


def test_another_branch_of_the_upstream_repo_is_a_target_of_its_own(tmp_cwd, upstream, write_token):
    before = head_and_files(upstream)
    code, out, err = run_cli(
        "refresh", hub_config(tmp_cwd, upstream), upstream, "--revision", "refreshed", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["samples"] == {"train": 3}
    assert head_and_files(upstream) == before  # main, the branch read, did not move


@pytest.mark.parametrize(
    ("folder", "target", "why"),
    [
        ("studio", "./studio", "is the source"),
        ("studio", "./studio/refreshed", "lies inside the source"),
        ("work/studio", "./work", "contains the source"),
    ],
)
def test_the_cli_refuses_a_local_target_over_a_local_backend(tmp_cwd, folder, target, why):
    studio = tmp_cwd / folder
    studio.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(studio / "a.png")
    (studio / "a.txt").write_text("a caption")
    config = json.dumps([{"id": "studio", "type": "local", "instance_data_dir": folder}])
    code, out, err = run_cli("refresh", config, target)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"error: backend 'studio': the target {target} {why} {folder}: the refresh would write into the "
        "folder it reads. Choose a target directory outside it (and it outside the target)."
    ]
    assert sorted(p.name for p in studio.iterdir()) == ["a.png", "a.txt"]
    assert not (tmp_cwd / f".{target.removeprefix('./')}.hubpress").exists()


@pytest.mark.parametrize(
    ("read", "written"),
    [
        ("refs/heads/main", "main"),
        ("main", "refs/heads/main"),
        (None, "refs/heads/main"),
        ("dev", "refs/heads/dev"),
    ],
)
def test_a_branch_spelled_as_a_full_ref_is_the_same_branch(read, written):
    """The Hub takes `refs/heads/main` for `main` (a revision in a resolve or commit URL), so a
    backend reading one and a target writing the other are the same branch."""
    from hubpress.refresh.config import parse_refresh_config, target_reads_itself

    entry = {"id": "art", "type": "huggingface", "dataset_name": "alice/art", "caption_column": "caption"}
    config = parse_refresh_config([{**entry, **({"revision": read} if read else {})}])
    why = target_reads_itself(config, "alice/art", written)
    assert why is not None and "would commit over the dataset it reads" in why
    assert target_reads_itself(config, "alice/art", "refs/heads/other") is None
