"""An LFS batch answer's links are checked before the upload uses them: huggingface_hub posts to the
`verify` link with the upload's headers, the user's token among them, so a Hub (or anything
answering for it) naming another host there would be sent the token. Through publish-lora against
the test Hub behind tests/hubproxy.py, which says the Hub serves no Xet (the LFS path) and points
the verify link at a server that records what it is sent."""

from __future__ import annotations

import json
import uuid

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, run_cli
from tests.tokenthief import TokenThief

pytestmark = pytest.mark.usefixtures("prefect_harness")

BATCH = r"/info/lfs/objects/batch"


def _verify_at(href: str):
    def change(body: bytes) -> bytes:
        answer = json.loads(body)
        for obj in answer.get("objects", []):
            if "verify" in (obj.get("actions") or {}):
                obj["actions"]["verify"]["href"] = href
        return json.dumps(answer).encode()

    return change


@pytest.mark.parametrize("where", ["{thief}/verify", "https://huggingface.co.{host}/verify"])
def test_a_verify_link_on_another_host_never_gets_the_token(
    hub, hub_proxy, write_token, tmp_path, monkeypatch, where
):
    monkeypatch.setenv("HUBPRESS_HUB_ENDPOINT", hub_proxy.url)
    monkeypatch.setenv("HF_ENDPOINT", hub_proxy.url)
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    weights = write_lora(tmp_path / "w" / "pytorch_lora_weights.safetensors", seed=12)
    repo = f"alice/lfs-verify-{uuid.uuid4().hex[:8]}"
    hub_proxy.answer(r"/xet-write-token/", 404, {"error": "no Xet here"}, count=100)
    with TokenThief() as thief:
        hub_proxy.rewrite(BATCH, _verify_at(where.format(thief=thief.url, host="127.0.0.1")), count=100)
        code, out, err = run_cli("publish-lora", str(weights.parent), repo)
    assert any(BATCH in fired for _action, fired in hub_proxy.fired), hub_proxy.fired  # the LFS path ran
    assert not thief.saw(WRITE_TOKEN), "the token was sent to another host"
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert "verify link on another host" in lines[0] and WRITE_TOKEN not in out + err, lines[0]


def test_a_listing_whose_next_page_is_on_another_host_never_gets_the_token(
    hub, hub_proxy, write_token, tmp_path, monkeypatch
):
    import httpx2

    from hubpress.targets.token_links import TokenLinkRefused, check_token_links

    # huggingface_hub follows a next link as named: huggingface.co is another host for a self-hosted
    # Hub (only a Xet token route on huggingface.co is rewritten to the endpoint)
    listing = httpx2.Request("GET", f"{hub_proxy.url}/api/models/a/b/tree/main")
    with pytest.raises(TokenLinkRefused):
        check_token_links(listing, httpx2.Headers({"link": '<https://huggingface.co/api/x>; rel="next"'}))
    """huggingface_hub follows a listing's `Link: rel="next"` with the listing's headers: a page
    naming another host as the next one would be sent the token."""
    monkeypatch.setenv("HUBPRESS_HUB_ENDPOINT", hub_proxy.url)
    monkeypatch.setenv("HF_ENDPOINT", hub_proxy.url)
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    weights = write_lora(tmp_path / "w" / "pytorch_lora_weights.safetensors", seed=13)
    repo = f"alice/next-page-{uuid.uuid4().hex[:8]}"
    assert run_cli("publish-lora", str(weights.parent), repo)[0] == 0
    write_lora(weights, seed=14)
    with TokenThief() as thief:
        link = f'<{thief.url}/api/models/{repo}/tree/main?cursor=x>; rel="next"'
        hub_proxy.answer(r"/tree/", 200, [], headers={"Link": link}, count=100)
        code, out, err = run_cli("publish-lora", str(weights.parent), repo)
    assert ("answer", next(f for a, f in hub_proxy.fired if "/tree/" in f)) in hub_proxy.fired
    assert not thief.saw(WRITE_TOKEN), "the token was sent to another host"
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert "next page" in lines[0] and WRITE_TOKEN not in out + err, lines[0]
