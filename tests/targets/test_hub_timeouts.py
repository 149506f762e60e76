"""The timeouts a Hub request really carries: hubpress's settings (hubpress.deadlines), not httpx's
5 s default. A commit the Hub takes longer than 5 s to answer (a large commit on a slow link) was
cut by a ReadTimeout and sent again."""

from __future__ import annotations

from huggingface_hub import HfApi, get_session

from hubpress.settings import Settings
from hubpress.targets import hub_http
from tests.conftest import WRITE_TOKEN


def test_a_hub_request_without_a_timeout_gets_the_settings_bounds(hub):
    settings = Settings(connect_timeout=7, read_timeout=45, request_deadline=90)
    hub_http.install(settings)
    try:
        # What huggingface_hub's commit call does: a POST through its shared session, no timeout given.
        response = get_session().get(
            f"{hub.url}/api/whoami-v2", headers={"authorization": f"Bearer {WRITE_TOKEN}"}
        )
        assert response.status_code == 200
        assert response.request.extensions["timeout"] == {"connect": 7, "read": 45, "write": 45, "pool": 90}
        # A timeout a call gives is kept when it is the shorter one, and capped when it is longer.
        short = get_session().get(f"{hub.url}/api/whoami-v2", timeout=3)
        assert short.request.extensions["timeout"] == {"connect": 3, "read": 3, "write": 3, "pool": 3}
        long = get_session().get(f"{hub.url}/api/whoami-v2", timeout=600)
        assert long.request.extensions["timeout"] == {"connect": 7, "read": 45, "write": 45, "pool": 90}
        assert HfApi(endpoint=hub.url, token=WRITE_TOKEN).whoami()["name"] == "alice"
    finally:
        hub_http.install(Settings())
