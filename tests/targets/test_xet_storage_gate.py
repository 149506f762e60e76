"""The Xet storage a Hub names is checked before hf_xet sees it. hf_xet takes `local://PATH` as a
storage folder on this machine and writes into it (the test Hub's CAS is one), so a Hub that names
any other folder, or anything that is not an http(s) address, is refused: the publish or download
ends in one line, and nothing is written there."""

from __future__ import annotations

import os
import uuid

import pytest
from huggingface_hub import HfApi

from hubpress.targets.hub_http import xet_storage_refusal
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, requires_xet, run_cli


@pytest.mark.parametrize(
    "url",
    [
        "https://cas-server.xethub.hf.co",
        "HTTPS://cas.example:443/x",
        "http://127.0.0.1:9/cas",
        "local://{root}/xet",
    ],
)
def test_an_http_address_or_a_folder_inside_a_listed_root_may_be_named(url, tmp_path):
    (tmp_path / "root" / "xet").mkdir(parents=True)
    assert xet_storage_refusal(url.format(root=tmp_path / "root"), (str(tmp_path / "root"),)) is None


@pytest.mark.parametrize(
    "url",
    [
        "local://{tmp}/elsewhere",
        "local://{tmp}/root/../elsewhere",  # `..` leads out of the listed root
        "local://{tmp}/root/link/inside",  # so does a symlink inside it
        "local://{tmp}/rootless",  # a sibling whose name starts like the root
        "local://",
        "local:///",
        "file://{tmp}/root",
        "s3://bucket/cas",
        "https://",
        "cas-server.xethub.hf.co",
        "",
    ],
)
def test_anything_else_is_refused(url, tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "root" / "link")
    assert xet_storage_refusal(url.format(tmp=tmp_path), (str(tmp_path / "root"),)) is not None


def test_no_listed_root_refuses_every_local_storage(tmp_path):
    assert xet_storage_refusal(f"local://{tmp_path}", ()) is not None


@requires_xet
@pytest.mark.usefixtures("prefect_harness")
def test_a_hub_naming_a_folder_of_this_machine_as_its_xet_storage_gets_nothing_written_there(
    hub, write_token, tmp_path, monkeypatch
):
    """publish-lora against a Hub whose Xet write token answer names local://ELSEWHERE: one line,
    exit 1, no token printed, and hf_xet never creates anything there."""
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    weights = write_lora(tmp_path / "w" / "pytorch_lora_weights.safetensors", seed=11)
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setattr(type(hub.app.xet), "url", property(lambda self: f"local://{elsewhere}"))
    code, out, err = run_cli("publish-lora", str(weights.parent), f"alice/xetgate-{uuid.uuid4().hex[:8]}")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Prefect:")]
    assert code == 1, f"exit {code}\n{err}"
    assert "Traceback" not in err and len(lines) == 1, err
    assert "Xet storage" in lines[0] and "HUBPRESS_XET_LOCAL_CAS" in lines[0], lines[0]
    assert WRITE_TOKEN not in out + err
    assert not elsewhere.exists(), f"hf_xet wrote {sorted(elsewhere.rglob('*'))}"


@requires_xet
def test_every_xet_token_answer_through_huggingface_hubs_client_is_checked(
    hub, write_token, tmp_path, monkeypatch
):
    """A download's read token is fetched by huggingface_hub (then handed to hf_xet), through the
    client hubpress gives it: the answer naming local://ELSEWHERE is refused there, and the Hub's
    own CAS, listed in HUBPRESS_XET_LOCAL_CAS by the test Hub, passes."""
    from huggingface_hub.utils import build_hf_headers
    from huggingface_hub.utils._http import get_session

    from hubpress.settings import Settings
    from hubpress.targets import hub_http

    hub_http.install(Settings())
    repo = f"alice/xetread-{uuid.uuid4().hex[:8]}"
    HfApi(endpoint=hub.url, token=WRITE_TOKEN).create_repo(repo)
    url = f"{hub.url}/api/models/{repo}/xet-read-token/main"
    headers = build_hf_headers(token=WRITE_TOKEN)
    assert get_session().get(url, headers=headers).status_code == 200
    monkeypatch.setattr(type(hub.app.xet), "url", property(lambda self: f"local://{tmp_path / 'elsewhere'}"))
    with pytest.raises(hub_http.XetStorageRefused, match="outside HUBPRESS_XET_LOCAL_CAS") as refused:
        get_session().get(url, headers=headers)
    assert WRITE_TOKEN not in str(refused.value)
