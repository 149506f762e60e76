"""A local directory target keeps one line of versions. A branch (--revision) or a pull request
asked of it is refused as an option value (exit 2, one line, before Prefect): before, --revision
dev was ignored and the directory's current files moved, as if main had been published."""

from __future__ import annotations

import pytest

from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("command", "extra", "needle"),
    [
        ("publish-dataset", ["--revision", "dev"], "a local directory has no branches, so --revision 'dev'"),
        ("publish-lora", ["--revision", "dev"], "a local directory has no branches, so --revision 'dev'"),
        ("publish-dataset", ["--create-pr"], "--create-pr needs a Hub repo"),
    ],
)
def test_branches_of_a_local_directory_are_refused(tmp_path, command, extra, needle):
    source = (
        write_lora(tmp_path / "w" / "pytorch_lora_weights.safetensors", rank=2)
        if command == "publish-lora"
        else write_dataset(tmp_path / "src", samples=2, image_size=16) and tmp_path / "src"
    )
    target = tmp_path / "published"
    code, out, err = run_cli(command, str(source), str(target), *extra)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and needle in err
    assert not target.exists() and not (tmp_path / ".published.hubpress").exists()
