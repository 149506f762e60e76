"""--license must be something a Hub license identifier can be (lowercase, no spaces): the Hub checks
a card's `license` when the card is committed, so "Apache 2.0" is refused before the build (exit 2,
one line, before Prefect), not after it at the commit."""

from __future__ import annotations

import pytest

from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli


@pytest.mark.parametrize("license_", ["Apache 2.0", "foo bar", "MIT", "-mit", "cc by 4.0"])
def test_a_license_no_identifier_can_be_is_exit_2_before_prefect(license_, tmp_path):
    write_dataset(tmp_path / "src", samples=2, image_size=16)
    weights = write_lora(tmp_path / "w" / "pytorch_lora_weights.safetensors", seed=3)
    for args in (
        ("publish-dataset", str(tmp_path / "src"), str(tmp_path / "out"), "--dry-run"),
        ("publish-lora", str(weights.parent), str(tmp_path / "lora-out")),
    ):
        code, out, err = run_cli(*args, "--license", license_)
        assert code == 2 and out == "", (args[0], code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "is not a Hub license identifier" in lines[0], err
        assert repr(license_) in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "lora-out").exists()


@pytest.mark.parametrize("license_", ["apache-2.0", "cc-by-nc-sa-4.0", "llama3.1", "other"])
def test_hub_license_identifiers_are_accepted(license_):
    from hubpress.flows.params import PublishDatasetParams, PublishLoraParams

    assert PublishDatasetParams(source="/data/x", target="org/x", license=license_).license == license_
    assert PublishLoraParams(src_path="/w", target="org/x", license=license_).license == license_


@pytest.mark.usefixtures("prefect_harness")
def test_an_identifier_goes_into_the_card_as_given(tmp_path):
    write_dataset(tmp_path / "src", samples=2, image_size=16)
    code, _, err = run_cli(
        "publish-dataset", str(tmp_path / "src"), str(tmp_path / "out"), "--license", "openrail++"
    )
    assert code == 0, err
    assert "license: openrail++\n" in (tmp_path / "out" / "README.md").read_text()
