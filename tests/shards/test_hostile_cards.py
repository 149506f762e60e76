"""User text in cards: escaped, and a card merge is a fixed point. Pure checks, then the flow."""

from __future__ import annotations

import uuid

import pytest
from huggingface_hub import HfApi
from PIL import Image

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.shards.card import DatasetCardInfo, render_dataset_card, summarize_split
from hubpress.shards.cards import BEGIN, END, escape_text, merge_card, split_front_matter
from tests.conftest import WRITE_TOKEN
from tests.shard_helpers import make_sample

HOSTILE = f"<script>alert(1)</script> <img src=x onerror=alert(2)> {END} {BEGIN} [x](javascript:alert(3)) | `"


def test_escape_text_leaves_no_tag_marker_or_cell_break():
    out = escape_text(HOSTILE)
    assert "<" not in out and ">" not in out and END not in out and BEGIN not in out
    assert "|" not in out.replace("\\|", "")
    assert "](" not in out.replace("\\](", "")


def test_dataset_card_with_hostile_prompt_and_id_is_a_fixed_point(tmp_path):
    sample = make_sample(tmp_path, "id<b>", prompt=HOSTILE)
    info = DatasetCardInfo(splits=(summarize_split("train", [sample], []),))
    first = render_dataset_card(None, info)
    assert "<script>" not in first and "<img" not in first and "<b>" not in first
    assert first.count(END) == 1 and first.count(BEGIN) == 1
    assert render_dataset_card(first, info) == first
    # The user's own text, even holding a stray end marker before the block, stays put and stable.
    edited = first.replace(BEGIN, f"My notes {END}\n\n{BEGIN}", 1)
    again = render_dataset_card(edited, info)
    assert render_dataset_card(again, info) == again and again.count(BEGIN) == 1


@pytest.mark.parametrize(
    "readme",
    [
        "---\nlicense: [unclosed\n---\n\nMy words.\n",
        "---\n: : :\n\t- bad\n---\nMy words.\n",
        "---\n- just\n- a list\n---\nMy words.\n",
    ],
)
def test_unparsable_front_matter_is_kept_as_text_and_the_merge_settles(readme):
    merged = merge_card(readme, {"license": "other"}, "generated")
    meta, body = split_front_matter(merged)
    assert meta == {"license": "other"} and "My words." in body
    assert merge_card(merged, {"license": "other"}, "generated") == merged


def _tree(root, prompt: str) -> None:
    for sub in ("train/control_images", "train/training_images"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(("a", "b")):
        Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(root / f"train/control_images/{name}.png")
        Image.new("RGB", (8, 8), (0, i * 50, 0)).save(root / f"train/training_images/{name}.png")
        (root / f"train/training_images/{name}.txt").write_text(prompt + name)


@pytest.mark.usefixtures("prefect_harness")
def test_publishing_a_hostile_prompt_twice_changes_nothing_and_a_broken_readme_never_blocks(
    hub, tmp_path, write_token
):
    src = tmp_path / "src"
    _tree(src, HOSTILE)
    repo = f"alice/cards-{uuid.uuid4().hex[:8]}"
    first = publish_dataset(PublishDatasetParams(source=str(src), target=repo))
    card = hub.read_file("dataset", repo, "README.md").decode()
    assert first["commit"] and "<script>" not in card and "onerror=alert(2)>" not in card
    assert card.count(END) == 1
    hub.reset_stats()
    second = publish_dataset(PublishDatasetParams(source=str(src), target=repo))
    assert second["commit"] is None and hub.stats.commits == 0

    # Someone writes a README whose front matter is not YAML: the next publish still goes through.
    HfApi(token=WRITE_TOKEN).upload_file(
        path_or_fileobj=b"---\nlicense: [oops\n---\n\nHand-written notes.\n",
        path_in_repo="README.md",
        repo_id=repo,
        repo_type="dataset",
    )
    third = publish_dataset(PublishDatasetParams(source=str(src), target=repo))
    card = hub.read_file("dataset", repo, "README.md").decode()
    assert third["commit"] and "Hand-written notes." in card and split_front_matter(card)[0]
    fourth = publish_dataset(PublishDatasetParams(source=str(src), target=repo))
    assert fourth["commit"] is None
