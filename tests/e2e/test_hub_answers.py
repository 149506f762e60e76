"""Answers the Hub may not give, through the CLI, with tests/hubproxy.py in front of the test Hub:
a commit (or tag) applied but never answered, answers hubpress cannot use, a commit answered with
the old head, and rate limits with every kind of Retry-After. Each ends in a result or one line,
never a traceback, and a commit is never made twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN, XET

pytestmark = pytest.mark.usefixtures("prefect_harness")

COMMIT = r"^POST /api/datasets/alice/[^/]+/commit/"


def cli(*args: str, endpoint: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "HF_TOKEN": WRITE_TOKEN,
            "HUBPRESS_HUB_ENDPOINT": endpoint,
            "HUBPRESS_STAGING": str(tmp_path / "staging"),
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            **env,
        },
        timeout=600,
    )


def error_lines(out: subprocess.CompletedProcess) -> list[str]:
    """stderr without the banner every command prints (where Prefect records the run)."""
    return [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("Prefect: ")]


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    write_dataset(src, samples=4, image_size=16, seed=5)
    return src


def name() -> str:
    return f"alice/ans-{uuid.uuid4().hex[:8]}"


def ours(hub, repo: str) -> list[dict]:
    return [c for c in hub.commit_history("dataset", repo) if c["title"] != "initial commit"]


def test_a_commit_applied_but_never_answered_is_reported_and_verified_as_ours(
    hub, hub_proxy, source, tmp_path
):
    repo = name()
    hub_proxy.lose_answer(COMMIT)
    out = cli("publish-dataset", str(source), repo, "--json", endpoint=hub_proxy.url, tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    result = json.loads(out.stdout)
    assert ("lose", hub_proxy.fired[0][1]) == hub_proxy.fired[0] and "/commit/" in hub_proxy.fired[0][1]
    assert result["commit"] == hub.head("dataset", repo)  # the lost commit is the publish's commit
    assert result["uploaded_bytes"] > 0 and result["uploaded_files"]
    assert len(ours(hub, repo)) == 1  # never made twice
    assert hub.stats.requests["commit"] == 1
    assert "landed" in out.stderr  # the log says what happened


def test_a_pull_request_opened_but_never_answered_is_ours_and_never_opened_twice(
    hub, hub_proxy, source, tmp_path
):
    """With --create-pr the commit lands on a new refs/pr/N, which a retry would open again: the
    pull request opened since the attempt, carrying the plan's fingerprint, is the publish's."""
    repo = name()
    first = cli("publish-dataset", str(source), repo, "--json", endpoint=hub.url, tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    main = hub.head("dataset", repo)
    store = hub.store.get("dataset", repo)
    write_dataset(source, samples=6, image_size=16, seed=6)  # a change to propose
    for attempt in range(2):  # a PR opened by someone else, then ours with its answer lost
        if attempt:
            hub_proxy.lose_answer(COMMIT)
        out = cli(
            "publish-dataset", str(source), repo, "--create-pr", "--json", "--commit-message", f"proposal {attempt}",
            endpoint=hub_proxy.url, tmp_path=tmp_path,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
    result = json.loads(out.stdout)
    assert hub_proxy.fired and hub_proxy.fired[0][0] == "lose" and "create_pr=1" in hub_proxy.fired[0][1]
    prs = {r.name: r.target for r in store.refs("pr")}
    assert sorted(prs) == ["refs/pr/1", "refs/pr/2"]  # never a third
    assert result["commit"] == prs["refs/pr/2"] and result["pr_url"].endswith(
        f"/datasets/{repo}/discussions/2"
    )
    assert hub.head("dataset", repo) == main  # main is left alone
    assert "landed" in out.stderr and "discussions/2" in out.stderr


def test_a_pull_request_not_opened_is_opened_once_and_an_older_one_is_not_taken_for_it(
    hub, hub_proxy, tmp_path, monkeypatch
):
    """The same proposal twice: the second's first attempt never reaches the Hub (a 502 from the
    proxy). The open pull request carrying the same plan fingerprint is older than the attempt, so
    it is not taken for the publish's: the retry opens the second one."""
    from huggingface_hub import HfApi

    repo = name()
    HfApi(endpoint=hub.url, token=WRITE_TOKEN).create_repo(repo, repo_type="dataset")
    data = b"\0" + os.urandom(800)
    first = api_publish(hub_proxy, tmp_path, monkeypatch, repo, data, create_pr=True)
    hub_proxy.answer(COMMIT, 502, {"error": "bad gateway"})  # answered here, never forwarded
    second = api_publish(hub_proxy, tmp_path, monkeypatch, repo, data, create_pr=True)
    prs = {r.name: r.target for r in hub.store.get("dataset", repo).refs("pr")}
    assert prs == {"refs/pr/1": first.commit, "refs/pr/2": second.commit}
    assert second.pr_url.endswith("/discussions/2") and [a for a, _ in hub_proxy.fired] == ["answer"]


def test_a_hub_that_lists_no_pull_requests_still_takes_a_pull_request(
    hub, hub_proxy, tmp_path, monkeypatch, caplog
):
    """A refs answer without `pullRequests` (a Hub that does not list them): one warning line, and
    the pull request is opened (a lost answer could not be recognised there)."""
    from huggingface_hub import HfApi

    repo = name()
    HfApi(endpoint=hub.url, token=WRITE_TOKEN).create_repo(repo, repo_type="dataset")
    hub_proxy.rewrite(
        r"/refs\?include_prs=1",
        lambda body: json.dumps({k: v for k, v in json.loads(body).items() if k != "pullRequests"}).encode(),
    )
    out = api_publish(hub_proxy, tmp_path, monkeypatch, repo, create_pr=True)
    prs = {r.name: r.target for r in hub.store.get("dataset", repo).refs("pr")}
    assert prs == {"refs/pr/1": out.commit} and out.pr_url.endswith("/discussions/1")
    assert [action for action, _ in hub_proxy.fired] == ["rewrite"]
    said = [r.getMessage() for r in caplog.records if "pullRequests" in r.getMessage()]
    assert len(said) == 1 and hub_proxy.url in said[0], said


def test_a_tag_created_but_never_answered_is_recognised_as_ours(hub, hub_proxy, source, tmp_path):
    repo = name()
    hub_proxy.lose_answer(r"^POST /api/datasets/alice/[^/]+/tag/")
    out = cli(
        "publish-dataset",
        str(source),
        repo,
        "--tag",
        "v1",
        "--json",
        endpoint=hub_proxy.url,
        tmp_path=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["tag"] == "v1"
    refs = {t["name"]: t["target"] for t in _tags(hub, repo)}
    assert refs == {"v1": result["commit"]}
    assert hub.stats.requests["tag_create"] == 2  # applied and unanswered, then 409 on the retry


def _tags(hub, repo):
    return [{"name": r.name, "target": r.target} for r in hub.store.get("dataset", repo).refs("tags")]


@pytest.mark.parametrize(
    ("rewrite", "sent"),
    [
        (lambda body: json.dumps({**json.loads(body), "commitOid": "ab" * 32}).encode(), "abab"),
        (lambda body: b"<html>gateway says hello</html>", "<html>gateway"),
        (
            lambda body: json.dumps({k: v for k, v in json.loads(body).items() if k != "commitOid"}).encode(),
            "commitOid",
        ),
    ],
    ids=["64-hex-commit-id", "not-json", "missing-field"],
)
def test_an_unusable_commit_answer_is_one_line_and_the_landed_commit_is_found(
    hub, hub_proxy, source, tmp_path, rewrite, sent
):
    repo = name()
    hub_proxy.rewrite(COMMIT, rewrite)
    out = cli("publish-dataset", str(source), repo, "--json", endpoint=hub_proxy.url, tmp_path=tmp_path)
    assert "Traceback" not in out.stderr
    assert out.returncode == 0, out.stderr  # the Hub did commit: the head carries the plan's fingerprint
    result = json.loads(out.stdout)
    assert result["commit"] == hub.head("dataset", repo) and len(ours(hub, repo)) == 1
    named = [line for line in error_lines(out) if hub_proxy.url in line and sent in line]
    assert len(named) == 1, out.stderr  # one line naming the Hub and what it sent


def test_an_unusable_answer_elsewhere_is_one_line_naming_the_hub(hub, hub_proxy, source, tmp_path):
    repo = name()
    hub_proxy.answer(
        r"^GET /api/whoami-v2", 200, b"<html>captive portal</html>", {"Content-Type": "text/html"}
    )
    out = cli("publish-dataset", str(source), repo, endpoint=hub_proxy.url, tmp_path=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(error_lines(out)) <= 2, out.stderr
    assert hub_proxy.url in out.stderr and "captive portal" in out.stderr
    assert hub.head("dataset", repo) is None  # nothing was created or built


def test_a_commit_answered_with_the_old_head_is_reported_as_no_commit(hub, hub_proxy, source, tmp_path):
    repo = name()
    first = cli("publish-dataset", str(source), repo, "--json", endpoint=hub_proxy.url, tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    old = hub.head("dataset", repo)
    write_dataset(source, samples=6, image_size=16, seed=6)  # something new to commit
    url = f"{hub_proxy.url}/datasets/{repo}/commit/{old}"
    hub_proxy.answer(COMMIT, 200, {"success": True, "commitOid": old, "commitUrl": url})  # never forwarded
    out = cli("publish-dataset", str(source), repo, "--json", endpoint=hub_proxy.url, tmp_path=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "the Hub made no commit" in out.stderr and old[:12] in out.stderr
    assert "committed" not in out.stderr.lower().replace("no commit", "")
    assert hub.head("dataset", repo) == old


def test_retry_after_nan_falls_back_to_backoff_through_the_cli(hub, hub_proxy, source, tmp_path):
    repo = name()
    hub_proxy.answer(COMMIT, 429, {"error": "slow down"}, {"Retry-After": "nan"})
    hub_proxy.answer(r"/preupload/", 429, {"error": "slow down"}, {"Retry-After": "-5"})
    out = cli("publish-dataset", str(source), repo, "--json", endpoint=hub_proxy.url, tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert json.loads(out.stdout)["commit"] == hub.head("dataset", repo)
    assert len(hub_proxy.fired) == 2


def api_publish(hub_proxy, tmp_path, monkeypatch, repo, data: bytes | None = None, **options):
    """One small file (`data`, random by default) through hubpress's Python publishing API, via the proxy."""
    import hashlib

    from hubpress.settings import Settings
    from hubpress.targets.plan import StagedFile, git_blob_oid
    from hubpress.targets.publish import open_target, publish_files

    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    monkeypatch.setenv("HUBPRESS_HUB_ENDPOINT", hub_proxy.url)
    data = data or b"\0" + os.urandom(2000)
    (tmp_path / "a.bin").write_bytes(data)
    staged = StagedFile(
        "a.bin", hashlib.sha256(data).hexdigest(), len(data), str(tmp_path / "a.bin"), git_blob_oid(data)
    )
    target = open_target(repo, "dataset", Settings())
    return publish_files(target, [staged], target_name=repo, message="m", **options)


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "1e400", ""])
def test_a_retry_after_that_is_no_usable_wait_falls_back_to_backoff(
    hub, hub_proxy, tmp_path, monkeypatch, value
):
    repo = name()
    hub_proxy.answer(COMMIT, 429, {"error": "slow down"}, {"Retry-After": value})
    hub_proxy.answer(r"/preupload/", 503, {"error": "busy"}, {"Retry-After": value})
    out = api_publish(hub_proxy, tmp_path, monkeypatch, repo)
    assert out.commit == hub.head("dataset", repo)
    assert [action for action, _ in hub_proxy.fired] == ["answer", "answer"]


def test_a_retry_after_over_the_bound_stops_at_once_through_the_cli(hub, hub_proxy, source, tmp_path):
    repo = name()
    hub_proxy.answer(r"/preupload/", 429, {"error": "rate limited"}, {"Retry-After": "100000"}, count=10)
    out = cli("publish-dataset", str(source), repo, endpoint=hub_proxy.url, tmp_path=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "100,000 s" in out.stderr and "at most 300 s" in out.stderr
    assert error_lines(out)[-1].startswith("error: The Hub at " + hub_proxy.url), out.stderr
    # Not retried: each of the (at most 4) shards' early uploads asked once, and the publish stopped
    # there, before its own upload step and the commit.
    assert 1 <= len(hub_proxy.fired) <= 4
    assert "commit" not in hub.stats.requests and ours(hub, repo) == []


def test_a_hub_asking_for_waits_forever_stops_the_call_at_its_bound_in_all(hub, hub_proxy, source, tmp_path):
    # Each wait is within the bound, but they never end: the commit call waits three times the
    # bound in all (1 s here), then stops in one line, rather than 6 attempts of the library's 5.
    repo = name()
    hub_proxy.answer(COMMIT, 429, {"error": "rate limited"}, {"Retry-After": "1"}, count=100)
    out = cli(
        "publish-dataset",
        str(source),
        repo,
        endpoint=hub_proxy.url,
        tmp_path=tmp_path,
        HUBPRESS_HUB_MAX_WAIT_SECONDS="1",
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    line = error_lines(out)[-1]
    assert line.startswith("error: The Hub at " + hub_proxy.url) and "at most 3 s in all" in line, out.stderr
    assert len([f for f in hub_proxy.fired if "/commit/" in f[1]]) == 4  # three waits, then stopped
    assert ours(hub, repo) == []


@pytest.mark.parametrize(
    "where", [COMMIT, r"/preupload/", r"^GET /api/datasets/"], ids=["commit", "preupload", "read"]
)
@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "100000"},
        {"RateLimit": '"api";r=0;t=100000', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'},
    ],
    ids=["retry-after", "ratelimit"],
)
def test_a_wait_over_the_bound_stops_at_once(hub, hub_proxy, tmp_path, monkeypatch, where, headers):
    from hubpress.targets.hub_waits import HubRateLimited

    repo = name()
    hub_proxy.answer(where, 429, {"error": "rate limited"}, headers, count=10)
    with pytest.raises(HubRateLimited, match=r"asked hubpress to wait 100,000 s .*at most 300 s"):
        api_publish(hub_proxy, tmp_path, monkeypatch, repo)
    assert len(hub_proxy.fired) == 1  # not retried
    assert ours(hub, repo) == [] if hub.head("dataset", repo) else True


def test_a_retry_after_date_far_in_the_future_stops_at_once(hub, hub_proxy, tmp_path, monkeypatch):
    """An HTTP date counts as the seconds until then: year 9999 is over the bound, never waited."""
    from hubpress.targets.hub_waits import HubRateLimited

    repo = name()
    date = "Fri, 31 Dec 9999 23:59:59 GMT"
    hub_proxy.answer(r"/preupload/", 429, {"error": "rate limited"}, {"Retry-After": date}, count=10)
    with pytest.raises(
        HubRateLimited, match=r"asked hubpress to wait [\d,]+ s \(Retry-After: Fri, 31 Dec 9999"
    ):
        api_publish(hub_proxy, tmp_path, monkeypatch, repo)
    assert len(hub_proxy.fired) == 1  # not retried


def test_a_rate_limit_reset_is_waited_for_and_logged(hub, hub_proxy, source, tmp_path):
    repo = name()
    headers = {"RateLimit": '"api";r=0;t=2', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'}
    hub_proxy.answer(COMMIT, 429, {"error": "rate limited"}, headers)
    hub_proxy.answer(r"/preupload/", 429, {"error": "rate limited"}, headers)
    out = cli("publish-dataset", str(source), repo, "--json", endpoint=hub_proxy.url, tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["commit"] == hub.head("dataset", repo)
    waits = [line for line in out.stderr.splitlines() if "waiting 2 s" in line and "at most 300 s" in line]
    assert len(waits) == 2, out.stderr  # one per rate-limited call, each naming the reset and the bound
    assert len(ours(hub, repo)) == 1


FINE_TOKEN = "hf_fine_grained_7c41d9"


@pytest.mark.parametrize("case", ["read-only-repo", "other-namespace"])
def test_a_token_that_cannot_write_the_target_is_refused_before_anything_is_built(tmp_path, source, case):
    """A fine-grained token that may only read an existing repo, and a write token outside its
    namespace: both refused before the listing, the intake or a build, in one line."""
    from huggingface_hub import HfApi

    from tests.hubserver import HubServer

    tokens = {WRITE_TOKEN: ("alice", "write"), FINE_TOKEN: ("alice", "write")}
    with HubServer(tmp_path / "hub", tokens=tokens, read_only={FINE_TOKEN: {"dataset/alice/kept"}}) as server:
        HfApi(endpoint=server.url, token=WRITE_TOKEN).create_repo("alice/kept", repo_type="dataset")
        server.reset_stats()
        token, repo = (FINE_TOKEN, "alice/kept") if case == "read-only-repo" else (FINE_TOKEN, "bob/theirs")
        out = cli(
            "publish-dataset", str(source), repo, endpoint=server.url, tmp_path=tmp_path, HF_TOKEN=token
        )
        assert out.returncode == 1 and "Traceback" not in out.stderr
        [line] = error_lines(out)
        assert "cannot write" in line and "Nothing was read or built" in line and token not in line
        assert ("may only read the dataset repo alice/kept" if case == "read-only-repo" else "'bob'") in line
        assert set(server.stats.requests) == {"whoami"}, server.stats.requests  # asked once, nothing else
        assert not list((tmp_path / "staging").rglob("*.parquet"))
        # the same token still writes the rest of alice's namespace
        assert HfApi(endpoint=server.url, token=FINE_TOKEN).create_repo("alice/other", repo_type="dataset")


@pytest.mark.lfs
def test_two_publishes_of_the_same_new_dataset_at_once_both_end_well_and_the_repo_is_complete(hub, tmp_path):
    """Both upload the same objects at once (on the LFS lane: multipart, parts interleaved; on the
    Xet lane: the same chunks): the Hub stores them by content, so both uploads succeed; the commit
    race's loser re-plans and finds nothing to do."""
    from prefect.settings import PREFECT_API_URL

    src = tmp_path / "src"
    write_dataset(src, samples=12, image_size=32, seed=12)
    repo = name()
    saved = hub.multipart_threshold, hub.multipart_chunk_size
    hub.multipart_threshold, hub.multipart_chunk_size = 8_000, 8_000
    try:
        runs = []
        for i in range(2):
            work = tmp_path / f"run{i}"
            work.mkdir()
            env = {
                **os.environ,
                "HF_TOKEN": WRITE_TOKEN,
                "HUBPRESS_STAGING": str(work / "staging"),
                "HUBPRESS_CACHE_DIR": str(work / "cache"),
                "PREFECT_API_URL": PREFECT_API_URL.value(),
            }
            command = [
                sys.executable,
                "-m",
                "hubpress.commands.cli",
                "publish-dataset",
                str(src),
                repo,
                "--json",
            ]
            runs.append(
                subprocess.Popen(
                    command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
        outs = [(*run.communicate(timeout=900), run.returncode) for run in runs]
    finally:
        hub.multipart_threshold, hub.multipart_chunk_size = saved
    for _stdout, stderr, code in outs:
        assert "Traceback" not in stderr
        assert code == 0, stderr
    results = [json.loads(stdout) for stdout, _, _ in outs]
    head = hub.head("dataset", repo)
    assert head in {r["commit"] for r in results}
    assert len(ours(hub, repo)) in (1, 2)
    from hubpress.api import load_editing_dataset

    dsd = load_editing_dataset(repo, revision=head, token=WRITE_TOKEN)
    assert sum(len(split) for split in dsd.values()) == 12  # the repo is complete
    if XET:
        assert hub.stats.xet_bytes > 0  # the shards went up through Xet
    else:
        assert hub.stats.requests["lfs_complete"] >= 1  # multipart uploads, both completed
