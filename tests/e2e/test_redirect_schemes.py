"""A resolve answer redirecting a download to another scheme (`file:///etc/passwd`) or to a URL
with user information (`http://user:pass@other/...`): download-lora ends in one line, exit 1, reads
no local file, sends the other host neither the token nor any Authorization, and repeats no user
information. (Both held when tried: httpx refuses the scheme and drops the credentials across
origins; kept so that they keep holding.)"""

from __future__ import annotations

import pytest

from tests.conftest import WRITE_TOKEN, lora_on_the_hub, run_cli
from tests.hostileproxy import USERINFO

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("kind", ["redirect_file", "redirect_userinfo"])
def test_a_download_redirected_to_another_scheme_or_userinfo_is_one_line(
    kind, hub, hostile_proxy, write_token, tmp_cwd, monkeypatch
):
    repo, weights = lora_on_the_hub(hub, tmp_cwd, "odd-redirect", seed=3)
    monkeypatch.setenv("HF_HOME", str(tmp_cwd / "hf-home"))
    hostile_proxy.arm(rf"^GET /{repo}/resolve/", kind, count=50)
    code, out, err = run_cli("download-lora", repo)
    assert code == 1 and out == "" and hostile_proxy.fired, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
    assert "root:" not in err and USERINFO.split(":")[1] not in err
    for headers in hostile_proxy.other_saw:
        assert "authorization" not in headers and WRITE_TOKEN not in str(headers)
    assert not [p for p in (tmp_cwd / "hf-home").rglob(weights.name) if p.is_file()]
