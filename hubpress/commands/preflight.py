"""Checks a command makes before it starts Prefect, so a run that cannot succeed fails in
milliseconds instead of after the flow engine's start-up."""

from __future__ import annotations

from hubpress.settings import require_write_token
from hubpress.targets.base import is_local_target


def fail_fast_without_token(target: str, dry_run: bool) -> None:
    """A write to the Hub needs a token: say so (naming every way to give one) before any work."""
    if not dry_run and not is_local_target(target):
        require_write_token()
