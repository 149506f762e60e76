"""A local target's README.md or manifest.json that is not UTF-8 (re-saved in Latin-1 by an
editor, or weights given as `--extra FILE=README.md`). On main the next publish to it ended in a
UnicodeDecodeError traceback, with every byte of the file in Prefect's log line; the Hub path
said one line (hubpress.targets.blob_texts). Now a local target says the same: the card stops the
publish in one line (it would be overwritten), a manifest is ignored with a warning."""

from __future__ import annotations

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli


@pytest.mark.usefixtures("prefect_harness")
def test_a_card_that_is_not_utf8_stops_the_publish_in_one_line(tmp_path):
    weights = write_lora(tmp_path / "pytorch_lora_weights.safetensors", rank=4)
    out = tmp_path / "out"
    code, _, err = run_cli("publish-lora", str(weights), str(out))
    assert code == 0, err
    card = out / "README.md"
    card.write_bytes(card.read_text(encoding="utf-8").replace("# ", "# Caf\u00e9 ", 1).encode("latin-1"))

    code, out_text, err = run_cli("publish-lora", str(weights), str(out))
    assert code == 1 and out_text == "", err
    [line] = [line for line in err.splitlines() if not line.startswith("Prefect: ")]
    assert line.startswith("error: README.md of local directory") and "is not UTF-8 text" in line
    assert "Traceback" not in err and "UnicodeDecodeError" not in err


def test_a_manifest_that_is_not_utf8_is_ignored_with_a_warning(tmp_path, caplog):
    from hubpress.targets.local import LocalDir
    from hubpress.targets.publish import publish_files
    from tests.shard_helpers import staged_file, staged_manifest

    a = "data/train-00000000000000aa.parquet"
    target = LocalDir(tmp_path / "out")
    files = [staged_file(tmp_path, a, b"A"), staged_manifest(tmp_path, [a])]
    assert publish_files(target, files, target_name="out", message="1", card=lambda old: "# card\n").commit
    (tmp_path / "out" / "manifest.json").write_bytes(b'{"note": "caf\xe9"}')

    again = publish_files(target, files, target_name="out", message="2", card=lambda old: "# card\n")
    assert again.commit  # the manifest is restored
    assert "manifest.json of local directory" in caplog.text and "is not UTF-8 text" in caplog.text


def test_a_card_given_as_an_extra_file_must_be_utf8_text(tmp_path):
    # `--extra weights=README.md`, or a card saved in Latin-1: refused before Prefect starts.
    weights = write_lora(tmp_path / "pytorch_lora_weights.safetensors", rank=4)
    card = tmp_path / "card.md"
    card.write_bytes("# Caf\u00e9\n".encode("latin-1"))
    for given in (weights, card):
        code, out_text, err = run_cli(
            "publish-lora", str(weights), str(tmp_path / "out"), "--extra", f"{given}=README.md"
        )
        assert code == 1 and out_text == "", err
        [line] = err.splitlines()
        assert line.startswith(f"error: {given} of the card given as README.md is not UTF-8 text"), line
    assert not (tmp_path / "out").exists()
