"""The content-addressed copies of small committed files (card, manifest) that spare downloads."""

from pathlib import Path

from hubpress.targets.blob_texts import BlobTexts
from hubpress.targets.plan import git_blob_oid


def test_a_copy_is_found_by_its_blob_id_and_a_damaged_one_is_ignored(tmp_path):
    texts = BlobTexts(str(tmp_path / "texts"))
    card = b"---\nlicense: mit\n---\n# A card\n"
    oid = git_blob_oid(card)
    assert texts.get(oid) is None
    texts.put(card)
    assert texts.get(oid) == card.decode()
    assert texts.get(git_blob_oid(b"something else")) is None

    # A copy whose bytes no longer hash to its name is never used: the caller downloads instead.
    stored = next(p for p in Path(tmp_path / "texts").rglob(oid))
    stored.write_bytes(card + b"tampered")
    assert texts.get(oid) is None
