"""Every parser of user or remote input keeps its limits (hubpress/parsers.py): a refresh config
nested 100,000 deep, with infinite or overflowing probabilities, or not UTF-8; a training output's
config.yaml that is a billion laughs or refers to itself; a metrics file that is a billion-laughs's
JSON cousin (deep nesting). Each is refused in one line naming the file and the limit, through the
CLI, and nothing is published. pytest-timeout bounds each: before, several never ended.
"""

from __future__ import annotations

import json

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(300)

BACKEND = {"id": "up", "type": "huggingface", "dataset_name": "alice/up", "caption_column": "caption"}


def one_error_line(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Prefect:")]
    assert code == 1 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "deeper than the limit of 64 levels"),
        (json.dumps([{**BACKEND, "probability": "INF"}]).replace('"INF"', "Infinity").encode(), "Infinity"),
        (json.dumps([{**BACKEND, "probability": "INF"}]).replace('"INF"', "1e400").encode(), "1e400"),
        (
            json.dumps(
                [{**BACKEND, "probability": 1e308}, {**BACKEND, "id": "b", "probability": 1e308}]
            ).encode(),
            "less than or equal to 1000000",
        ),
        (
            json.dumps([{**BACKEND, "caption_column": "L\u00e9gende"}], ensure_ascii=False).encode("latin-1"),
            "not UTF-8",
        ),
        (b" " * (16 * 1024 * 1024 + 1) + b"[]", "byte limit"),
    ],
    ids=["nested-100000", "Infinity", "1e400", "1e308-sum", "latin-1", "17MB"],
)
def test_a_refresh_config_over_a_limit_is_one_line(content, expected, tmp_path, write_token):
    config = tmp_path / "refresh.json"
    config.write_bytes(content)
    code, out, err = run_cli("refresh", str(config), str(tmp_path / "out"))
    line = one_error_line(code, err)
    assert expected in line, line
    assert not (tmp_path / "out").exists()


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (BILLION_LAUGHS, "more than 100,000 YAML nodes"),
        ("&o {self: *o}\n", "refers to itself"),
        ("lr: &x [1, *x]\n", "refers to itself"),
    ],
    ids=["billion-laughs", "self-mapping", "self-list"],
)
def test_a_training_config_over_a_limit_is_one_line(config, expected, tmp_path):
    run = tmp_path / "run"
    write_lora(run / "checkpoint-10" / "pytorch_lora_weights.safetensors", seed=6)
    (run / "config.yaml").write_text(config)
    target = tmp_path / "out" / "lora"
    code, out, err = run_cli("release", str(run), "--repo", str(target))
    line = one_error_line(code, err)
    assert "config.yaml" in line and expected in line, line
    assert not (target / "pytorch_lora_weights.safetensors").exists()


def test_a_metrics_file_over_a_limit_is_skipped_and_reported(tmp_path):
    """Metrics only matter to best:METRIC: a hostile one is reported, never fatal, never a hang."""
    from hubpress.lora.release import discover_training_output

    run = tmp_path / "run"
    write_lora(run / "checkpoint-10" / "pytorch_lora_weights.safetensors", seed=7)
    (run / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)
    output = discover_training_output(str(run))
    assert any("metrics.json" in p and "deeper than the limit" in p for p in output.problems)
