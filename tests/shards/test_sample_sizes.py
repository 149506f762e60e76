"""A sample's estimated size in a shard (shards.estimate_sample_size, which decides where shards
and row groups end) is the plain sum it has always been: the UTF-8 lengths of its id and prompt,
its images' sizes and a fixed overhead per row, for any text and any images."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.shards.shards import _ROW_OVERHEAD, estimate_sample_size
from hubpress.sources.models import FileRef, Sample

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
refs = st.builds(
    lambda n, size: FileRef(f"/r/{n}.png", f"{n}.png", size), st.integers(0, 9), st.integers(0, 2**40)
)


@settings(max_examples=300, deadline=None)
@given(texts, st.none() | texts, st.lists(refs, max_size=3), st.none() | refs, st.none() | refs)
def test_the_estimate_is_the_sum_of_text_bytes_and_image_sizes(sid, prompt, controls, mask, target):
    sample = Sample(sid, "train", prompt, controls, mask, target)
    text = len(sid.encode()) + len((prompt or "").encode())
    assert estimate_sample_size(sample) == sum(ref.size for ref in sample.images()) + text + _ROW_OVERHEAD
