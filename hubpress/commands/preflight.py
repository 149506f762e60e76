"""Checks made before Prefect starts, so a run that cannot succeed fails in milliseconds (with one
line) instead of after the flow engine's start-up and inside a flow run.

The CLI commands and `hubpress.api` call these on the same parameter models the flows take. They
look at this machine (paths, tokens, the configuration file, a staging and cache directory that
can be written) and open one TCP connection to the Hub endpoint when the command needs the Hub
(a dead endpoint is one line in ~2 s, not a failed flow run); a write to the Hub also asks the Hub
who the token is (whoami-v2), so a wrong or read-only token is one line too. Nothing else talks to
the Hub or S3.
The flows check the same things again where they run (a worker may see other paths).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlsplit

from hubpress.errors import ConfigError, SourceError
from hubpress.settings import get_settings, require_write_token
from hubpress.targets.base import RepoType, is_local_target


def fail_fast_without_token(target: str, dry_run: bool) -> None:
    """A write to the Hub needs a token: say so (naming every way to give one) before any work."""
    if not dry_run and not is_local_target(target):
        require_write_token()


# A dead endpoint is reported after this many connection attempts (0.5 s, then 1 s apart).
CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT = 3.0


def check_hub_reachable() -> None:
    """The Hub endpoint accepts a TCP connection, within a few attempts; else HubUnavailable
    naming the endpoint."""
    from hubpress.targets.hub_calls import HubUnavailable

    _check_reachable(
        get_settings().endpoint(), "the Hub", "HF_ENDPOINT (or HUBPRESS_HUB_ENDPOINT)", HubUnavailable
    )


def check_s3_reachable() -> None:
    """A configured S3 endpoint (HUBPRESS_S3_ENDPOINT_URL) accepts a TCP connection: a closed port
    is one line in ~2 s, not botocore's and Prefect's retries multiplied inside a flow run."""
    endpoint = get_settings().s3_endpoint_url
    if endpoint:
        from hubpress.targets.hub_failures import RemoteUnreachable

        _check_reachable(endpoint.rstrip("/"), "S3", "HUBPRESS_S3_ENDPOINT_URL", RemoteUnreachable)


def check_dask_reachable(address: str) -> None:
    """A Dask scheduler named by --dask-address accepts a TCP connection: one line in ~2 s, not
    distributed's 30 s connect timeout and a traceback inside the flow run."""
    from hubpress.orchestration.runners import scheduler_host_port
    from hubpress.targets.hub_failures import RemoteUnreachable

    host, port = scheduler_host_port(address)
    host = f"[{host}]" if ":" in host else host  # an IPv6 address, bracketed as in a URL
    _check_reachable(f"tcp://{host}:{port}", "the Dask scheduler", "--dask-address", RemoteUnreachable)


def check_s3_credentials(uri: str) -> None:
    """Some AWS credentials are found for an s3:// location (botocore's chain, or the settings):
    without them every S3 call fails inside the flow run, with Prefect's traceback."""
    settings = get_settings()
    if settings.aws_credentials_block:
        return
    from hubpress.storage.s3 import s3_session

    if s3_session(settings)[0].get_credentials() is None:
        raise ConfigError(
            f"no AWS credentials for {uri}: set HUBPRESS_AWS_ACCESS_KEY_ID and "
            "HUBPRESS_AWS_SECRET_ACCESS_KEY (or AWS_* variables, a profile), or name an AwsCredentials "
            "block in HUBPRESS_AWS_CREDENTIALS_BLOCK."
        )


def _check_reachable(endpoint: str, what: str, setting: str, failure: type[Exception]) -> None:
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started, error = time.monotonic(), None
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=CONNECT_TIMEOUT):
                return
        except OSError as exc:
            error = exc
            if attempt < CONNECT_ATTEMPTS:
                time.sleep(0.5 * attempt)
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    raise failure(
        f"Cannot reach {what} at {endpoint}: {reason} ({CONNECT_ATTEMPTS} attempts in "
        f"{time.monotonic() - started:.0f} s). Check {setting} and the network, then run again."
    )


def check_writable(path: str, what: str, setting: str) -> None:
    """A local directory hubpress writes to (staging, caches) can be created and written to: a
    read-only disk is refused here, where os.access alone would not always tell."""
    if path.startswith("s3://"):
        return
    from hubpress.storage.files import check_takes_new_files

    directory = os.path.abspath(os.path.expanduser(path.removeprefix("file://")))
    try:
        os.makedirs(directory, exist_ok=True)
        check_takes_new_files(directory)
    except OSError as exc:
        raise ConfigError(
            f"The {what} directory {directory} cannot be written ({exc.strerror or exc}): free it, "
            f"or point {setting} at a writable directory."
        ) from None


def check_cache() -> None:
    check_writable(get_settings().cache_dir, "cache", "HUBPRESS_CACHE_DIR")


def _needs_hub(target: str, reads_hub: bool = False) -> None:
    if reads_hub or not is_local_target(target):
        check_hub_reachable()


def check_token_accepted(target: str, repo_type: RepoType, dry_run: bool, pull_request: bool = False) -> None:
    """A wrong token, or one that cannot write the repo, is one line here (the Hub's account
    answer, whoami-v2, decided as the flow decides it: hubpress.targets.publish.open_target), not
    a failed flow run."""
    if dry_run:
        return
    from hubpress.targets.publish import open_target

    # A local target: its folder must take new files (hubpress.targets.local.LocalDir.check_write_access).
    open_target(target, repo_type, get_settings(), write=True, pull_request=pull_request)


def check_target_not_ambiguous(target: str, cwd: Path | None = None) -> None:
    """`out/face-seg` reads as a Hub repo id, but when ./out exists here the user may well mean
    the directory. Refuse to guess: one line saying how to write either."""
    if is_local_target(target) or "/" not in target:
        return
    first = target.split("/", 1)[0]
    if ((cwd or Path.cwd()) / first).exists():
        raise ConfigError(
            f"target {target!r} is ambiguous: ./{first} exists here. Write ./{target} for the local "
            f"directory, or a Hub repo id whose organisation is not a local folder name (org/name)."
        )


def check_local_input(uri: str, what: str, expect: str = "dir") -> None:
    """A local source, training output or weights file must exist (s3:// is checked by the flow)."""
    if uri.startswith("s3://"):
        if not urlparse(uri).netloc:
            raise SourceError(f"{what} {uri!r} is not a usable S3 location: expected s3://bucket/prefix.")
        check_s3_credentials(uri)
        check_s3_reachable()
        return
    path = Path(uri.removeprefix("file://")).expanduser()
    if not path.exists():
        raise SourceError(f"{what} {path} does not exist: check the path (or use s3://bucket/prefix).")
    if expect == "dir" and not path.is_dir():
        raise SourceError(f"{what} {path} is a file, not a directory.")
    if expect == "file" and not path.is_file():
        raise SourceError(f"{what} {path} is not a regular file: give the path of a file.")


def check_local_layout(uri: str, layout: str) -> None:
    """A local source holds a dataset in `layout` (auto: either): an empty folder, or one holding
    something else, is one line here, as from `scan`, not a failed flow run. Reads the root's names
    and at most one file per split folder."""
    from hubpress.sources.discovery import detect_layout
    from hubpress.sources.found import SPLITS

    if uri.startswith("s3://"):
        return
    root = Path(uri.removeprefix("file://")).expanduser()
    relpaths = [entry.name for entry in root.iterdir() if entry.is_file()]
    for split in SPLITS:
        if (root / split).is_dir():
            for folder, _, files in os.walk(root / split):
                if files:
                    relpaths.append(f"{split}/{Path(folder, files[0]).relative_to(root / split)}")
                    break
    detect_layout(relpaths, layout, where=uri)


def check_staging(staging: str | None) -> None:
    """The staging location must be an S3 prefix or a local directory hubpress can create and write."""
    uri = staging or get_settings().staging
    if uri.startswith("s3://"):
        if not urlparse(uri).netloc:
            raise ConfigError(f"staging {uri!r} is not a usable S3 location: expected s3://bucket/prefix.")
        check_s3_credentials(uri)
        check_s3_reachable()
        return
    if "://" in uri and not uri.startswith("file://"):
        raise ConfigError(f"staging {uri!r}: expected a local directory or s3://bucket/prefix.")
    path = Path(uri.removeprefix("file://")).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"staging {uri!r} cannot be used: {existing} is a file, not a directory. "
            "Pass --staging DIR or set HUBPRESS_STAGING."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"staging {uri!r} cannot be used: {existing} is not writable. "
            "Pass --staging DIR or set HUBPRESS_STAGING."
        )


def check_staging_outside_target(staging: str | None, target: str) -> None:
    """A local staging inside a local target (`--staging ./out/stage`) writes into the version the
    target's link names, and the next commit carries those files (leases, run folders) into the
    published copy as files it does not own: refused in one line. The flows ask the same
    (hubpress.targets.local.refuse_staging_inside), for a served run that no CLI checked."""
    from hubpress.targets.local import refuse_staging_inside

    refuse_staging_inside(staging or get_settings().staging, target)


def check_publish_dataset(params: Any) -> None:
    """PublishDatasetParams: the source, the staging location, the target and its token."""
    check_local_input(params.source, "source")
    check_local_layout(params.source, params.layout)
    check_staging(params.staging)
    check_staging_outside_target(params.staging, params.target)
    check_target_not_ambiguous(params.target)
    fail_fast_without_token(params.target, params.dry_run)
    check_cache()
    if not params.dry_run:
        check_writable(params.staging or get_settings().staging, "staging", "HUBPRESS_STAGING (or --staging)")
    _needs_hub(params.target)
    # The token's write access is asked after the no-op check (hubpress.commands.common.unchanged).


def check_refresh(params: Any) -> None:
    """RefreshParams: the configuration parses (a missing file is one line), staging, target, token."""
    from hubpress.refresh.backends import LocalBackend
    from hubpress.refresh.config import parse_refresh_config, refuse_target_reading_itself
    from hubpress.refresh.local import local_folder

    config = parse_refresh_config(params.config)
    refuse_target_reading_itself(config, params.target, params.revision)
    local = [b for b in config.backends if isinstance(b, LocalBackend)]
    for backend in local:
        local_folder(backend)  # the flow's own check: the same line before Prefect starts
    check_staging(params.staging)
    check_staging_outside_target(params.staging, params.target)
    check_target_not_ambiguous(params.target)
    fail_fast_without_token(params.target, params.dry_run)
    check_cache()
    if not params.dry_run:
        check_writable(params.staging or get_settings().staging, "staging", "HUBPRESS_STAGING (or --staging)")
    # Upstream Hub datasets are read from the Hub; a refresh of local folders only may run offline.
    _needs_hub(params.target, reads_hub=len(local) < len(config.backends))
    check_token_accepted(params.target, "dataset", params.dry_run)


def check_publish_lora(params: Any) -> None:
    """PublishLoraParams: the weights and extra files exist, the target and its token."""
    check_local_input(params.src_path, "weights", expect="any")
    if not params.src_path.startswith("s3://"):
        from hubpress.lora.weights import find_weights

        find_weights(params.src_path.removeprefix("file://"))  # a folder without (or with several) weights
    for local, remote in params.extra_files.items():
        check_local_input(local, "extra file", expect="file")
        if remote == "README.md":
            from hubpress.lora.publish import check_card_text

            check_card_text(local)
    check_target_not_ambiguous(params.target)
    fail_fast_without_token(params.target, params.dry_run)
    check_cache()
    _needs_hub(params.target)
    # The token's write access is asked after the no-op check (hubpress.commands.common.unchanged).


def check_release(params: Any) -> None:
    """ReleaseTrainingRunParams: the training output exists, the target and its token."""
    check_local_input(params.output_uri, "training output")
    check_staging_outside_target(None, params.repo_id)
    check_target_not_ambiguous(params.repo_id)
    fail_fast_without_token(params.repo_id, False)
    check_cache()
    check_writable(get_settings().staging, "staging", "HUBPRESS_STAGING")
    _needs_hub(params.repo_id)
    check_token_accepted(params.repo_id, "model", False)
