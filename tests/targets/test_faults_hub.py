"""Hub faults, injected by the Hub-protocol server: rate limits, 5xx bursts and resets mid-upload,
refused tokens, missing repos and revisions, someone else's commit, concurrent publishes, and
Prefect task retries that only ever retry transient failures."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid

import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from hubpress.api import download_lora
from hubpress.errors import HubAccessError, HubpressError, PublishError, ValidationFailed
from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.settings import Settings
from hubpress.targets.hub_calls import RepoNotFound, is_transient
from hubpress.targets.plan import StagedFile, git_blob_oid
from hubpress.targets.publish import open_target, publish_files
from hubpress.targets.retries import is_transient_storage_error
from hubpress.testdata.synth import write_dataset
from tests.conftest import READ_TOKEN, WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")


def repo(prefix="f") -> str:
    return f"alice/{prefix}-{uuid.uuid4().hex[:8]}"


def stage(tmp, path, data: bytes) -> StagedFile:
    src = tmp / "src" / path.replace("/", "__")
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    return StagedFile(path, hashlib.sha256(data).hexdigest(), len(data), str(src), git_blob_oid(data))


@pytest.fixture
def dataset(tmp_path):
    src = tmp_path / "src"
    write_dataset(src, samples=4, image_size=16, seed=11)
    return src


@pytest.fixture
def staging(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))


def our_commits(hub, name, revision="main"):
    return [c for c in hub.commit_history("dataset", name, revision) if c["title"] != "initial commit"]


# -- 429 -------------------------------------------------------------------------------------------


def test_rate_limit_in_a_flow_is_waited_on_retried_and_logged(hub, dataset, staging, write_token, caplog):
    name = repo("rl")
    hub.arm_fault("commit", "429", count=2, retry_after=1)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        result = publish_dataset(PublishDatasetParams(source=str(dataset), target=name))
    assert time.monotonic() - started >= 2  # Retry-After: 1 s, twice, was honoured
    assert result["commit"] and hub.head("dataset", name) == result["commit"]
    assert [f.kind for f in hub.stats.faults] == ["429", "429"]
    assert hub.stats.requests["commit"] == 3
    assert sum("rate-limited (429)" in r.getMessage() for r in caplog.records) == 2
    assert len(our_commits(hub, name)) == 1


def test_rate_limit_is_bounded(hub, tmp_path, write_token):
    name = repo("rlb")
    target = open_target(name, "dataset", Settings())
    hub.arm_fault("commit", "429", count=100, retry_after=0)
    with pytest.raises(PublishError, match="429"):
        publish_files(target, [stage(tmp_path, "a.bin", b"\0" * 10)], target_name=name, message="m")
    assert hub.stats.requests["commit"] == 6  # attempts of retry_transient, then a clear error
    assert len(target.retry_messages) == 5
    assert hub.head("dataset", name) == hub.commit_history("dataset", name)[0]["id"]  # initial only


# -- 5xx and resets mid-upload ---------------------------------------------------------------------


@pytest.mark.lfs_only
def test_5xx_bursts_and_resets_mid_lfs_upload_complete_with_one_commit(hub, tmp_path, write_token):
    name = repo("5xx")
    target = open_target(name, "dataset", Settings())
    files = [stage(tmp_path, f"data/{i}.bin", os.urandom(150_000)) for i in range(3)]
    hub.arm_fault("lfs_upload", "reset_mid_body", count=2)
    hub.arm_fault("lfs_upload", "503", count=1, retry_after=0)
    hub.arm_fault("lfs_upload", "500", count=1)
    hub.arm_fault("preupload", "502", count=2)
    hub.arm_fault("lfs_batch", "500", count=1)
    hub.arm_fault("commit", "503", count=1, retry_after=0)
    out = publish_files(target, files, target_name=name, message="ours")
    fired = sorted(f.kind for f in hub.stats.faults)
    assert fired == sorted(["reset_mid_body"] * 2 + ["503", "500", "502", "502", "500", "503"])
    assert out.commit and hub.head("dataset", name) == out.commit
    assert [c["title"] for c in our_commits(hub, name)] == ["ours"]  # no duplicate commit
    for f in files:
        assert hashlib.sha256(hub.read_file("dataset", name, f.path)).hexdigest() == f.sha256
    assert any("transient failure" in m for m in target.retry_messages)


def test_a_commit_whose_answer_was_lost_is_not_committed_twice(hub, tmp_path, write_token):
    """The server commits, but the client sees a reset: the retry names the old parent, is refused
    (412), and the re-plan finds nothing left to do."""
    name = repo("lost")
    target = open_target(name, "dataset", Settings())
    publish_files(target, [stage(tmp_path, "a.bin", b"\0" * 100)], target_name=name, message="base")
    hub.arm_fault("commit", "stall", count=1, stall_seconds=0)
    hub.arm_fault("commit", "500", count=1)
    out = publish_files(target, [stage(tmp_path, "a.bin", b"\0" * 200)], target_name=name, message="ours")
    assert out.commit
    assert [c["title"] for c in our_commits(hub, name)] == ["ours", "base"]


# -- 401 / 403 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "status"), [("hf_invalid_fault_token_5150", "401"), (READ_TOKEN, "403")], ids=["401", "403"]
)
def test_refused_tokens_fail_at_once_without_retries(
    hub, dataset, staging, monkeypatch, tmp_path, token, status
):
    monkeypatch.setenv("HF_TOKEN", token)
    name = repo("auth")
    state = publish_dataset(PublishDatasetParams(source=str(dataset), target=name), return_state=True)
    assert state.is_failed()
    with pytest.raises(HubAccessError) as info:
        state.result()
    message = str(info.value)
    assert status in message and "HF_TOKEN" in message and token not in message
    assert hub.stats.faults == ()
    # Nothing was retried, neither by hubpress nor by Prefect: one read, at most one create (a 403 on
    # create makes huggingface_hub's exist_ok look the repo up once more), and no upload at all.
    requests = hub.stats.requests
    assert set(requests) <= {"whoami", "repo_info", "repo_create"}, requests
    assert requests["whoami"] == 1  # the token is checked before anything is listed or built
    assert requests["repo_create"] <= 1 and requests["repo_info"] <= 1 + requests["repo_create"]
    # The repo is checked before the first shard is built (built shards go up as they are built),
    # so the run stops there: no shard was built and no task ran into the refusal to retry it.
    assert not list((tmp_path / "staging").rglob("*.parquet"))
    assert task_run_counts(state, expect_failed=0) == {}


def task_run_counts(flow_state, expect_failed: int = 1) -> dict[str, list[int]]:
    """name -> run_count of each failed task run of the flow run, read back from the Prefect API.
    Task-run states reach the API as events, so wait (bounded) for `expect_failed` of them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter
    from prefect.client.schemas.sorting import TaskRunSort

    flow_run_id = flow_state.state_details.flow_run_id
    counts: dict[str, list[int]] = {}
    with get_client(sync_client=True) as client:
        for _ in range(100):
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                task_run_filter=TaskRunFilter(),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                limit=200,
            )
            counts = {}
            for run in runs:
                if run.state and run.state.is_failed():
                    counts.setdefault(run.name.rsplit("-", 1)[0], []).append(run.run_count)
            if sum(map(len, counts.values())) >= expect_failed:
                break
            time.sleep(0.1)
    return counts


def test_bad_data_is_not_retried_by_prefect(hub, tmp_path, staging, write_token):
    src = tmp_path / "bad"
    write_dataset(src, samples=4, image_size=16, seed=2, defects=("truncated",))
    state = publish_dataset(
        PublishDatasetParams(source=str(src), target=repo("bad"), on_error="fail"), return_state=True
    )
    assert state.is_failed()
    with pytest.raises(ValidationFailed):
        state.result()
    assert hub.stats.requests.get("commit", 0) == 0
    for runs in task_run_counts(state).values():
        assert runs == [1] * len(runs)


def test_retry_condition_is_transient_only(hub, s3):
    """The classifications behind the task retry conditions, on errors the real clients raised."""
    import boto3
    from botocore.exceptions import ClientError
    from huggingface_hub.errors import HfHubHTTPError

    hub.arm_fault("whoami", "503", count=1, retry_after=0)
    with pytest.raises(HfHubHTTPError) as e503:
        HfApi(token=WRITE_TOKEN).whoami()
    with pytest.raises(HfHubHTTPError) as e401:
        HfApi(token="hf_nobody_404").whoami()
    assert is_transient(e503.value) and not is_transient(e401.value)
    for error in (HubAccessError("x"), ValidationFailed("x"), PublishError("x"), HubpressError("x")):
        assert not is_transient(error) and not is_transient_storage_error(error)

    endpoint, bucket = s3
    client = boto3.client("s3", endpoint_url=endpoint)
    with pytest.raises(ClientError) as missing:
        client.get_object(Bucket=bucket, Key="nope")
    assert not is_transient_storage_error(missing.value)
    assert not is_transient_storage_error(ValueError("bad option"))
    assert is_transient_storage_error(ConnectionResetError())


# -- 404 -------------------------------------------------------------------------------------------


def test_missing_repo_and_branch_are_created_by_publish(hub, dataset, staging, write_token):
    name = repo("new")
    result = publish_dataset(PublishDatasetParams(source=str(dataset), target=name, revision="dev"))
    assert hub.head("dataset", name, "dev") == result["commit"]
    assert HfApi(token=WRITE_TOKEN).dataset_info(name).private is True
    assert [c["title"] for c in our_commits(hub, name, "main")] == []  # main untouched


def test_downloading_a_missing_repo_revision_or_file_is_a_clear_error(hub, tmp_path, write_token):
    with pytest.raises(RepoNotFound, match="does not exist or is not visible"):
        download_lora(repo("missing"))
    name = f"alice/m-{uuid.uuid4().hex[:8]}"
    HfApi(token=WRITE_TOKEN).create_repo(name)
    with pytest.raises(HubpressError, match="nope"):
        download_lora(name, revision="nope")
    with pytest.raises(HubpressError, match="pytorch_lora_weights.safetensors"):
        download_lora(name)


# -- someone else's commit, and two publishers at once ----------------------------------------------


def test_a_commit_made_between_plan_and_commit_is_kept(hub, dataset, staging, write_token):
    name = repo("stale")
    first = publish_dataset(PublishDatasetParams(source=str(dataset), target=name))
    write_dataset(dataset, samples=5, image_size=16, seed=12)  # new content to publish
    hub.reset_stats()
    # Our commit (planned against the old head) is held up while someone else's lands first.
    hub.arm_fault("commit", "stall", count=1, stall_seconds=2)

    def interfere():
        while not hub.stats.faults:
            time.sleep(0.02)
        HfApi(token=OTHER_TOKEN).create_commit(
            name,
            [CommitOperationAdd("theirs.txt", b"their work")],
            commit_message="theirs",
            repo_type="dataset",
        )

    other = threading.Thread(target=interfere)
    other.start()
    second = publish_dataset(PublishDatasetParams(source=str(dataset), target=name))
    other.join()
    assert second["attempts"] == 2 and second["commit"] != first["commit"]
    titles = [c["title"] for c in our_commits(hub, name)]
    assert titles[1] == "theirs" and len(titles) == 3
    assert hub.read_file("dataset", name, "theirs.txt") == b"their work"
    assert second["samples"] == {"train": 5}


OTHER_TOKEN = WRITE_TOKEN  # the same owner writing from another client (e.g. the web editor)


def test_two_publishes_at_once_both_land_and_the_repo_ends_complete(hub, tmp_path, staging, write_token):
    name = repo("race")
    sources = []
    for i, n in enumerate((3, 4)):
        src = tmp_path / f"src{i}"
        write_dataset(src, samples=n, image_size=16, seed=20 + i)
        sources.append(src)
    results: list[dict] = [{}, {}]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(i):
        try:
            barrier.wait()
            results[i] = publish_dataset(PublishDatasetParams(source=str(sources[i]), target=name))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    commits = {r["commit"] for r in results}
    assert None not in commits and len(commits) == 2
    history = [c["id"] for c in our_commits(hub, name)]
    assert set(history) == commits  # both commits in history, nothing lost
    head = hub.head("dataset", name)
    winner = next(r for r in results if r["commit"] == head)
    files = set(hub.commit_history("dataset", name)[0]["files"])
    expected = set(winner["uploaded_files"]) | set(winner["unchanged_files"])
    assert {f for f in files if f.startswith("data/")} == {p for p in expected if p.startswith("data/")}
    assert winner["samples"] == {"train": 3 if winner is results[0] else 4}


def test_a_retry_warning_names_the_repo(hub, tmp_path, write_token):
    """`commit to: transient failure ...` said what was retried but not where: with several repos
    published at once (a refresh of many, a served deployment), the warning must name the repo."""
    name = repo("rtw")
    target = open_target(name, "dataset", Settings())
    hub.arm_fault("commit", "503", count=1, retry_after=0)
    publish_files(target, [stage(tmp_path, "a.bin", b"\0" * 10)], target_name=name, message="m")
    assert len(target.retry_messages) == 1
    assert target.retry_messages[0].startswith(f"commit to dataset repo {name}: transient failure (503)")
