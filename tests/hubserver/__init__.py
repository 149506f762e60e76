"""A server that speaks the Hugging Face Hub's HTTP API, for tests that use the real clients.

huggingface_hub and datasets talk to it over HTTP exactly as they talk to the Hub, on the Xet
path (hf_xet writes to a local CAS under DATA/xet) or the LFS path: nothing is patched. Modules:
gitobjects (git objects, LFS pointers), store (repos on disk), app (endpoints and access rules),
xet (the CAS, its tokens, files rebuilt by sha256), handler (HTTP transport and fault injection),
faults, stats, server (`HubServer`). Run standalone with `python -m tests.hubserver`.
"""

from .faults import FAULT_KINDS, FaultKind
from .server import HubServer
from .stats import Stats

__all__ = ["FAULT_KINDS", "FaultKind", "HubServer", "Stats"]
