"""Steps `prefect deploy` runs (prefect.yaml's `build` section), so a deployment that could never
run fails when it is made, with one line, instead of crashing every later run."""

from __future__ import annotations

import os


class CheckoutNotSet(SystemExit):
    """prefect.yaml's pull step needs HUBPRESS_CHECKOUT: where the repository is on the workers.

    A SystemExit, so `prefect deploy` stops with this one line (exit 1) rather than a traceback
    through its step runner."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


def require_checkout(directory: str = "") -> dict[str, str]:
    """Refuse to deploy without HUBPRESS_CHECKOUT (an empty pull directory makes every run crash
    with FileNotFoundError: ''). The path is where the repository is on the worker machines, so it
    need not exist on this one."""
    directory = (directory or "").strip()
    if not directory:
        raise CheckoutNotSet(
            "HUBPRESS_CHECKOUT is not set: run `HUBPRESS_CHECKOUT=/path/to/hubpress/on/the/workers "
            "prefect deploy --all` (the pull step moves each run into that directory)."
        )
    if not os.path.isabs(directory):
        raise CheckoutNotSet(
            f"HUBPRESS_CHECKOUT={directory!r} is not an absolute path: the workers resolve it in "
            "their own working directory. Give the absolute path of the repository on the workers."
        )
    return {"directory": directory}
