"""Every module of the project imports on its own: no import cycles, whatever is imported first,
and the build and refresh layers do not import the flows layer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hubpress",)

# In one fresh interpreter, import each module with none of the project's modules loaded before
# it (third-party packages stay loaded, so this costs seconds, not a interpreter per module): a
# cycle that only works in one import order fails here with the ImportError it would give a user.
_PROBE = r"""
import importlib, json, pkgutil, sys, traceback

packages = sys.argv[1:]
names = []
for package in packages:
    module = importlib.import_module(package)
    names.append(package)
    names += [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")]
failures = {}
loaded = {}
for name in names:
    for key in [k for k in sys.modules if k.split(".")[0] in packages]:
        del sys.modules[key]
    try:
        importlib.import_module(name)
    except ImportError:
        failures[name] = traceback.format_exc(limit=-3)
    loaded[name] = sorted(k for k in sys.modules if k.split(".")[0] in packages)
print(json.dumps({"names": names, "failures": failures, "loaded": loaded}))
"""


def _probe() -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_module_imports_alone_and_build_does_not_need_flows():
    result = _probe()
    assert "hubpress.shards.pipeline" in result["names"] and "hubpress.flows.params" in result["names"]
    assert len(result["names"]) > 60
    assert result["failures"] == {}, "\n".join(result["failures"].values())
    for name, loaded in result["loaded"].items():
        if name.startswith(("hubpress.shards", "hubpress.refresh", "hubpress.targets", "hubpress.sources")):
            flows = [m for m in loaded if m.startswith(("hubpress.flows", "hubpress.tasks"))]
            assert flows == [], f"{name} imports the flows layer: {flows}"
