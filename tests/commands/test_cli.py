"""The command line as a person meets it: one- or two-line errors, exit codes 1 and 2, no tracebacks."""

import json
import os
import subprocess
import sys

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import harness_api


def hubpress(*args, env_drop=(), cwd=None, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in env_drop} | (env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "src"
    write_dataset(root, samples=6, defects=("truncated",))
    return root


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["publish-dataset", "{src}", "not a repo"], "target: 'not a repo' is neither a Hub repo id"),
        (
            ["publish-dataset", "{src}", "org/ds", "--max-shard-size", "lots"],
            "max_shard_size: 'lots' is not a size",
        ),
        (["publish-dataset", "{src}", "org/ds", "--on-error", "explode"], "--on-error"),
        (["publish-lora", "w.safetensors", "org/m", "--extra", "no-equals-sign"], "expected LOCAL=REMOTE"),
    ],
)
def test_unusable_arguments_exit_2_with_one_line(source, args, needle):
    out = hubpress(*[a.format(src=source) for a in args])
    assert out.returncode == 2
    assert needle in out.stderr and "Traceback" not in out.stderr


def test_write_without_token_fails_before_prefect_starts(source, tmp_path):
    drop = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HUBPRESS_TOKEN")
    out = hubpress("publish-dataset", str(source), "org/ds", env_drop=drop)
    assert out.returncode == 1
    assert "HUGGINGFACE_HUB_TOKEN" in out.stderr and "Secret block" in out.stderr
    assert "Starting temporary server" not in out.stderr + out.stdout and "Traceback" not in out.stderr


def test_scan_json_is_one_object_and_fail_policy_exits_1(source):
    out = hubpress("scan", str(source), "--json")
    assert out.returncode == 0
    report = json.loads(out.stdout)
    assert report["splits"]["train"] == {"samples": 5, "skipped": 1}
    assert [p["kind"] for p in report["problems"] if p["kind"] == "undecodable_image"] == [
        "undecodable_image"
    ]
    failed = hubpress("scan", str(source), "--on-error", "fail")
    assert failed.returncode == 1 and "undecodable_image" in failed.stderr + failed.stdout


def test_help_lists_every_command():
    out = hubpress("--help")
    for command in ("scan", "publish-dataset", "publish-lora", "download-lora"):
        assert command in out.stdout


def test_an_error_inside_a_flow_is_said_once(source, tmp_path, prefect_harness):
    """ValidationFailed is raised inside the flow run: the terminal shows it once, as the command's
    own error line, not again as the task's, the flow's and each 'Finished in state Failed'."""
    # The harness's Prefect server: what is said is the point here, not the temporary server.
    out = hubpress(
        "publish-dataset",
        str(source),
        "./published",
        "--on-error",
        "fail",
        cwd=tmp_path,
        env_extra=harness_api(),
    )
    assert out.returncode == 1
    said = out.stdout + out.stderr
    assert said.count("Nothing was built") == 1, said
    assert "error: " in out.stderr and "Finished in state Failed" not in said
    assert "Encountered exception" not in said and "Traceback" not in said


def test_download_lora_json(tmp_path):
    from hubpress.testdata.synth_lora import write_lora

    weights = write_lora(tmp_path / "repo" / "pytorch_lora_weights.safetensors", rank=2)
    out = hubpress("download-lora", "./repo", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["path"].endswith("pytorch_lora_weights.safetensors")
    assert result["size"] == weights.stat().st_size and result["repo"] == "./repo"


@pytest.mark.parametrize(
    ("command", "model", "own", "excluded"),
    [
        ("publish-dataset", "PublishDatasetParams", {"task_runner", "dask_address", "as_json"}, set()),
        ("refresh", "RefreshParams", {"as_json"}, set()),
        ("publish-lora", "PublishLoraParams", {"extra", "as_json"}, {"extra_files"}),
    ],
)
def test_cli_options_are_the_parameter_model(command, model, own, excluded):
    """The CLI and the deployment forms come from one model: same names, defaults and choices."""
    import enum
    import typing

    from typer.main import get_command

    import hubpress.flows.params
    from hubpress.commands.cli import app

    fields = getattr(hubpress.flows.params, model).model_fields
    params = {p.name: p for p in get_command(app).commands[command].params if p.name not in own}
    assert set(params) == set(fields) - excluded
    for name, param in params.items():
        field = fields[name]
        if field.is_required():
            assert param.required, name
            continue
        default = param.default.value if isinstance(param.default, enum.Enum) else param.default
        expected = field.get_default(call_default_factory=True)
        assert default == expected or (default is None and expected in ([], None)), name
        kind = param.type_descriptor.annotation
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            assert [c.value for c in kind] == list(typing.get_args(field.annotation)), name
