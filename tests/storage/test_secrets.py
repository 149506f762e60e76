"""No token anywhere: every flow and the CLI run with a recognizable token from HF_TOKEN, and logs
(pytest's capture and the Prefect API's), artifacts, manifests, cards, exceptions and CLI output
are scanned for it. New repos are private unless --public, which is logged."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from huggingface_hub import HfApi
from typer.testing import CliRunner

from hubpress.commands.cli import app
from hubpress.errors import HubAccessError
from hubpress.flows.params import PublishDatasetParams, PublishLoraParams, ReleaseTrainingRunParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.flows.publish_lora import publish_lora
from hubpress.flows.release_training_run import release_training_run
from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")

CANARY_BAD = "hf_canary_refused_4f1e9d2b77"  # an unknown token: the 401 path


def name(prefix: str) -> str:
    return f"alice/{prefix}-{uuid.uuid4().hex[:8]}"


def prefect_records(flow_run_ids) -> list[str]:
    """Every log line and artifact the Prefect API holds for these flow runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
        TaskRunFilter,
    )
    from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort, LogSort

    texts = []
    with get_client(sync_client=True) as client:
        logs: list = []
        while True:  # the API pages logs by 200
            page = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=list(flow_run_ids))),
                limit=200,
                offset=len(logs),
                sort=LogSort.TIMESTAMP_ASC,
            )
            logs += page
            if len(page) < 200:
                break
        texts += [entry.message for entry in logs]
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=list(flow_run_ids))),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=200,
            offset=0,
        )
        texts += [json.dumps(a.data, default=str) + str(a.description) for a in artifacts]
        flow_runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(flow_run_ids))),
            sort=FlowRunSort.ID_DESC,
            limit=200,
            offset=0,
        )
        texts += [
            json.dumps(r.parameters, default=str) + str(r.state.message if r.state else "") for r in flow_runs
        ]
    assert logs and artifacts, "the scan must see the runs' logs and artifacts"
    return texts


def repo_texts(repo_id: str, repo_type: str) -> list[str]:
    api = HfApi(token=WRITE_TOKEN)
    texts = []
    for f in api.list_repo_tree(repo_id, repo_type=repo_type, recursive=True):
        if f.path.endswith((".md", ".json", ".yaml", ".txt")):
            path = api.hf_hub_download(repo_id, f.path, repo_type=repo_type)
            with open(path, encoding="utf-8") as fh:
                texts.append(fh.read())
    assert any("---" in t for t in texts)  # a card was read
    return texts


def test_no_flow_leaks_the_token(hub, tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    caplog.set_level(logging.DEBUG)
    src = tmp_path / "src"
    write_dataset(src, samples=3, image_size=16, seed=5)
    weights = write_lora(tmp_path / "w" / "pytorch_lora_weights.safetensors")
    run_dir = tmp_path / "run"
    for step in (10, 20):
        write_lora(run_dir / f"checkpoint-{step}" / "pytorch_lora_weights.safetensors", seed=step)

    states, texts = [], []
    ds, lora, rel = name("sds"), name("slora"), name("srel")
    states.append(publish_dataset(PublishDatasetParams(source=str(src), target=ds), return_state=True))
    states.append(publish_lora(PublishLoraParams(src_path=str(weights), target=lora), return_state=True))
    states.append(
        release_training_run(
            ReleaseTrainingRunParams(output_uri=str(run_dir), repo_id=rel), return_state=True
        )
    )
    for state in states:
        texts.append(json.dumps(state.result(), default=str))

    # the refused-token path: the exception, its Prefect state and logs
    monkeypatch.setenv("HF_TOKEN", CANARY_BAD)
    failed = publish_dataset(PublishDatasetParams(source=str(src), target=name("sbad")), return_state=True)
    with pytest.raises(HubAccessError) as info:
        failed.result()
    states.append(failed)
    texts += [str(info.value), repr(info.value), str(failed.message)]

    # the CLI, for people and --json, succeeding and refused
    runner = CliRunner()
    for token in (WRITE_TOKEN, CANARY_BAD):
        for extra in ([], ["--json"]):
            result = runner.invoke(
                app, ["publish-dataset", str(src), name("scli"), *extra], env={"HF_TOKEN": token}
            )
            texts += [result.output, str(result.exception or "")]
            assert result.exit_code == (0 if token == WRITE_TOKEN else 1), result.output

    texts += prefect_records({s.state_details.flow_run_id for s in states})
    texts += repo_texts(ds, "dataset") + repo_texts(lora, "model") + repo_texts(rel, "model")
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    out, err = capfd.readouterr()
    texts += [out, err]
    blob = "\n".join(texts)
    assert len(blob) > 10_000  # the scan saw real output
    for token in (WRITE_TOKEN, CANARY_BAD):
        assert token not in blob
        assert token[3:] not in blob  # not even without its hf_ prefix
    assert "HF_TOKEN" in str(info.value)  # the message names where the token came from


def test_repos_are_private_unless_public_is_asked_and_public_is_logged(
    hub, tmp_path, write_token, caplog, monkeypatch
):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    src = tmp_path / "src"
    write_dataset(src, samples=2, image_size=16, seed=6)
    private, public = name("priv"), name("pub")
    publish_dataset(PublishDatasetParams(source=str(src), target=private))
    with caplog.at_level(logging.INFO):
        publish_dataset(PublishDatasetParams(source=str(src), target=public, public=True))
    api = HfApi(token=WRITE_TOKEN)
    assert api.dataset_info(private).private is True
    assert api.dataset_info(public).private is False
    assert any("PUBLIC" in r.getMessage() and public in r.getMessage() for r in caplog.records)
    assert HfApi(token=False).dataset_info(public).id == public  # anonymous can read the public one
