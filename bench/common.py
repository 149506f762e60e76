"""Shared bench plumbing: a standalone Hub-protocol server and measured child processes.

Each measurement runs in a fresh child process so that its peak RSS (ru_maxrss from wait4) is its
own. Prefect's start-up is kept out of the timings by starting one local Prefect server for the
whole bench (the children connect to it) and timing inside the child around the job itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_benchwrite_0000"

# The start of every timed publish script (a child process, see `measure`): the imports, and a
# flow with a parameter to run first, so that Prefect's own start-up (client, API connection, the
# FastAPI encoder it imports on the first run with parameters) stays out of the timing. Scripts
# go on with `with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):`, warm_up, timer.
TIMED_PUBLISH_PRELUDE = textwrap.dedent(
    """
    import json, time
    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from hubpress.flows.publish_dataset import publish_dataset
    from hubpress.flows.params import PublishDatasetParams

    @flow
    def warm_up(params: PublishDatasetParams):
        return None
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The reference every bench compares with: our own reduction of qflux's upload_editing_dataset. One
# row per sample with the paths of its images (controls, a mask, a target) under the editing
# Features, one Dataset per split, then DatasetDict.push_to_hub, which reads and embeds every image.
# Timed after its imports, like hubpress after Prefect's. Formatted with `src` and `repo`.
REFERENCE = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path
    from datasets import Dataset, DatasetDict, Features, Image, List, Value
    root = Path({src!r})
    start = time.perf_counter()
    features = Features({{"id": Value("string"), "control_images": List(Image()), "control_mask": Image(),
                          "target_image": Image(), "prompt": Value("string")}})
    splits = {{}}
    for split in ("train", "test"):
        folder = root / split
        if not folder.is_dir():
            continue
        rows = []
        for prompt in sorted((folder / "training_images").glob("*.txt")):
            sample = prompt.stem
            images = sorted(p for p in (folder / "training_images").glob(sample + ".*") if p.suffix != ".txt")
            controls = sorted((folder / "control_images").glob(sample + ".*"))
            controls += sorted((folder / "control_images").glob(sample + "_control_*"))
            masks = sorted((folder / "control_images").glob(sample + "_mask.*"))
            rows.append({{"id": sample, "prompt": prompt.read_text(),
                         "control_images": [str(c) for c in controls],
                         "control_mask": str(masks[0]) if masks else None,
                         "target_image": str(images[0]) if images else None}})
        splits[split] = Dataset.from_list(rows, features=features)
    DatasetDict(splits).push_to_hub({repo!r}, private=True, token=os.environ["HF_TOKEN"])
    print(json.dumps({{"seconds": time.perf_counter() - start}}))
    """
)


class Servers:
    """A Hub-protocol server and a Prefect server on 127.0.0.1, for one bench run."""

    def __init__(
        self, work: Path, prefect: bool = True, hub_args: list[str] | None = None, lfs: bool = False
    ):
        """`hub_args`: extra options for the Hub-protocol server, e.g. a shaped link
        (`--latency-ms 50 --mbytes-per-s 40`). Uploads take the Hub's Xet path; `lfs=True` takes
        the LFS path (a --no-xet server, HF_HUB_DISABLE_XET=1 in the children)."""
        self.work = work
        self.lfs = lfs
        self.hub_args = [*(hub_args or []), *(["--no-xet"] if lfs else [])]
        self.extra_hubs: list[subprocess.Popen] = []
        self.hub, self.hub_url = self._start_hub(work / "hub")
        self.prefect = None
        self.prefect_url = None
        if prefect:
            port = free_port()
            env = dict(
                os.environ, PREFECT_HOME=str(work / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false"
            )
            self.prefect = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.prefect_url = f"http://127.0.0.1:{port}/api"
            import urllib.request

            for _ in range(120):
                try:
                    urllib.request.urlopen(self.prefect_url + "/health", timeout=1)
                    break
                except Exception:
                    time.sleep(0.5)

    def _start_hub(self, data: Path) -> tuple[subprocess.Popen, str]:
        hub = subprocess.Popen(
            [sys.executable, "-m", "tests.hubserver", "--port", "0", "--data", str(data),
             "--token", f"bench={TOKEN}:write", *self.hub_args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        line = hub.stdout.readline()
        assert line.startswith("READY"), line
        if "--no-xet" not in self.hub_args:
            from tests.hubserver.server import allow_local_xet_storage

            allow_local_xet_storage(data / "xet")  # env() hands it to every command the bench runs
        return hub, line.split()[1]

    def add_hub(self, name: str) -> str:
        """Another Hub-protocol server with its own storage (and Xet CAS) under work/name: a
        reference run there neither deduplicates against hubpress's uploads nor they against it."""
        hub, url = self._start_hub(self.work / name)
        self.extra_hubs.append(hub)
        return url

    def cas_bytes(self, name: str = "hub") -> int:
        """Bytes the Xet CAS of the server storing under work/name holds: what Xet uploads sent."""
        from tests.hubserver.xet import XetCas

        return XetCas(self.work / name / "xet").stored_bytes()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("HF_HUB_DISABLE_XET", None)
        if self.lfs:
            env["HF_HUB_DISABLE_XET"] = "1"
        env.update(
            HF_ENDPOINT=self.hub_url,
            HF_TOKEN=TOKEN,
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_HOME=str(self.work / "hf-home"),
            HF_DATASETS_CACHE=str(self.work / "hf-datasets"),
            HUBPRESS_STAGING=str(self.work / "staging"),
            HUBPRESS_CACHE_DIR=str(self.work / "cache"),
            PREFECT_LOGGING_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        if self.prefect_url:
            env["PREFECT_API_URL"] = self.prefect_url
        return env

    def stop(self) -> None:
        for proc in (self.hub, self.prefect, *self.extra_hubs):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


def measure(code: str, env: dict[str, str]) -> dict:
    """Run `code` in a child; it must print one JSON line. Returns it plus the child's peak RSS (MB)
    and CPU seconds.

    The page cache's dirty data is written out first, so a run does not pay for the writes of the
    run before it (each publish writes gigabytes: sources, stage, the server's objects)."""
    os.sync()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().strip().splitlines()
    if os.waitstatus_to_exitcode(status) != 0 or not out:
        raise RuntimeError(f"bench child failed ({status}): {out[-5:] if out else ''}")
    result = json.loads(out[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    # The child's CPU seconds (its own and its reaped children's, start-up included): on a shared
    # machine a steadier A/B figure than its wall time.
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    return result


def workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
