"""Prefect wrappers: chunked validation tasks, transient-only retries, report artifacts."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from prefect import flow, task

from hubpress.errors import ValidationFailed
from hubpress.sources.intake import run_intake
from hubpress.targets.retries import is_transient_storage_error
from hubpress.targets.retries import retry_only_transient as retry_transient_storage
from hubpress.tasks.intake import intake_in_flow, publish_report_artifacts
from hubpress.testdata.synth import DEFECTS, write_dataset


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )


def latest_artifact(key: str) -> dict:
    """Read through the REST API: this Prefect client sends nulls its own server refuses (422)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1, "offset": 0}
    response = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/filter", json=body)
    response.raise_for_status()
    return response.json()[0]


def test_which_errors_are_transient():
    assert is_transient_storage_error(client_error("SlowDown", 503))
    assert is_transient_storage_error(client_error("Throttling", 400))
    assert is_transient_storage_error(client_error("InternalError", 500))
    assert is_transient_storage_error(EndpointConnectionError(endpoint_url="http://x"))
    assert not is_transient_storage_error(client_error("NoSuchKey", 404))
    assert not is_transient_storage_error(client_error("AccessDenied", 403))
    assert not is_transient_storage_error(ValueError("bad data"))
    wrapped = RuntimeError("listing failed")
    wrapped.__cause__ = client_error("SlowDown", 503)
    assert is_transient_storage_error(wrapped)


def test_intake_as_tasks_matches_the_plain_run(prefect_harness, tmp_path):
    write_dataset(tmp_path, layout="csv", samples=20, test_fraction=0.2, masks=True, defects=DEFECTS, seed=8)

    @flow
    def intake_flow(source: str):
        return intake_in_flow(source, chunk_size=4)

    report = intake_flow(str(tmp_path))
    plain = run_intake(str(tmp_path), workers=1)
    assert report.splits == plain.splits
    assert sorted(map(repr, report.problems)) == sorted(map(repr, plain.problems))
    assert report.stats["chunks"] == 5  # 20 samples in chunks of 4: five validation tasks

    markdown, table = latest_artifact("intake-report"), latest_artifact("intake-report-problems")
    assert markdown["type"] == "markdown" and "| train |" in markdown["data"]
    assert table["type"] == "table" and "undecodable_image" in str(table["data"])


def test_on_error_fail_in_a_flow(prefect_harness, tmp_path):
    write_dataset(tmp_path, samples=4, defects=("truncated",))

    @flow
    def intake_flow(source: str):
        return intake_in_flow(source, on_error="fail", artifacts=False)

    with pytest.raises(ValidationFailed, match="undecodable_image"):
        intake_flow(str(tmp_path))


def test_only_transient_failures_are_retried(prefect_harness):
    calls = {"slow": 0, "bad": 0}

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_transient_storage)
    def slow_then_fine():
        calls["slow"] += 1
        if calls["slow"] == 1:
            raise client_error("SlowDown", 503)
        return "ok"

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_transient_storage)
    def bad_data():
        calls["bad"] += 1
        raise ValueError("undecodable")

    @flow
    def both():
        return slow_then_fine(), bad_data(return_state=True)

    value, state = both()
    assert value == "ok" and calls["slow"] == 2
    assert state.is_failed() and calls["bad"] == 1


def test_artifacts_outside_a_flow_are_a_no_op(tmp_path):
    write_dataset(tmp_path, samples=2)
    assert publish_report_artifacts(run_intake(str(tmp_path), workers=1)) is False


def test_the_listing_task_hands_its_files_over_without_prefect_tracking_each(prefect_harness, tmp_path):
    """Prefect links every item of a returned list to its task run (a walk per run, unchanged
    nights included); the listing comes back in a holder, so it links one object, not 80."""
    import pickle

    from prefect.context import FlowRunContext

    from hubpress.tasks.intake import list_source_task

    write_dataset(tmp_path, samples=20, seed=3)

    @flow
    def listing_flow(source: str):
        before = len(FlowRunContext.get().run_results)
        listing = list_source_task(source)
        return len(listing.files), len(FlowRunContext.get().run_results) - before, listing

    files, tracked, listing = listing_flow(str(tmp_path))
    assert files >= 40  # a control and a target image per sample, and the prompts
    assert tracked <= 2
    names = [f.relpath for f in listing.files]
    assert [f.relpath for f in pickle.loads(pickle.dumps(listing)).files] == names
