"""The qflux guide's functions, with the same names and arguments, on top of hubpress's flows.

    from hubpress.api import (
        upload_editing_dataset, upload_editing_dataset_from_csv, load_editing_dataset,
        upload_lora_safetensors, download_lora,
        refresh_dataset,  # hubpress's own: `hubpress refresh` from Python
    )

Uploads run the Prefect flows (so they show in the Prefect UI when a server is configured:
PREFECT_API_URL, else the local server of `hubpress server start`, else Prefect's temporary one);
an unchanged publish needs no flow run and is recorded as a `hubpress.publish.unchanged` event.
Loading and downloading are plain reads. They work from a plain script (no `__main__` guard) and
from a notebook, and leave no process behind. A target or repo given as a `pathlib.Path` is a local
directory, whatever its spelling (`Path("out")` is `./out`, not a Hub repo).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hubpress.flows.params import PublishDatasetParams
from hubpress.settings import call_token
from hubpress.targets.base import is_local_target, local_path


def _where(target: str | os.PathLike[str]) -> str:
    """A target or repo given as a path object (pathlib.Path) names a local directory, spelled so
    (`./out`): as text, `out` or `out/face-seg` reads as a Hub repo id."""
    if isinstance(target, os.PathLike):
        text = os.fspath(target)
        return text if is_local_target(text) else f"./{text}"
    return target


def _run_publish(params: Any) -> dict:
    """Prefect's configured API, else the local server (started on first use, said in one line on
    stderr); HUBPRESS_PREFECT_SERVER=temporary: Prefect's temporary one. An unchanged publish is
    answered there as a `hubpress.publish.unchanged` event, without a flow run
    (hubpress.orchestration.before_run); any other runs the flow. Prefect's INFO lines stay off the
    console, as from the CLI (hubpress.orchestration.console)."""
    import sys

    from hubpress.commands.interrupt import interruptible
    from hubpress.flows.params import RefreshParams
    from hubpress.orchestration.before_run import skip_if_unchanged
    from hubpress.orchestration.console import quiet_prefect_console
    from hubpress.orchestration.server import api_url_for_commands, check_configured_api, prefect_api

    url = api_url_for_commands(announce=lambda line: print(f"hubpress: {line}", file=sys.stderr), check=False)
    if not isinstance(params, RefreshParams):  # a refresh asks its upstreams itself, in its flow
        result = skip_if_unchanged(params, url, entry="api")
        if result is not None:
            return result
    check_configured_api()  # a flow run follows: the API must answer (asked only now, see there)
    if isinstance(params, PublishDatasetParams):
        from hubpress.flows.publish_dataset import publish_dataset as flow
    elif isinstance(params, RefreshParams):
        from hubpress.flows.refresh_dataset import refresh_dataset as flow
    else:
        from hubpress.flows.publish_lora import publish_lora as flow
    # Ctrl-C stops the run promptly, deletes an empty repo it created, says so on stderr and raises
    # KeyboardInterrupt, as the CLI does (hubpress.commands.interrupt).
    say = lambda line: print(f"hubpress: {line}", file=sys.stderr)  # noqa: E731
    with interruptible(say), quiet_prefect_console(), prefect_api(url):
        return flow(params)


def _publish(
    root_dir: str | os.PathLike[str],
    repo_id: str | os.PathLike[str],
    private: bool,
    layout: str,
    token: str | None,
    **extra: Any,
) -> dict:
    from hubpress.commands.preflight import check_publish_dataset

    params = PublishDatasetParams(
        source=str(root_dir), target=_where(repo_id), public=not private, layout=layout, **extra
    )
    with call_token(token):
        check_publish_dataset(params)  # argument errors surface before Prefect starts
        return _run_publish(params)


def upload_editing_dataset(
    root_dir: str | os.PathLike[str],
    repo_id: str | os.PathLike[str],
    private: bool = True,
    *,
    token: str | None = None,
    **options: Any,
) -> dict:
    """Publish a folder-layout dataset (train/ and/or test/ with control_images/ and
    training_images/). Returns the publish result (commit, files, counts). Keyword options are
    those of PublishDatasetParams (on_error, max_shard_size, revision, tag, dry_run, ...)."""
    return _publish(root_dir, repo_id, private, "folder", token, **options)


def upload_editing_dataset_from_csv(
    root_dir: str | os.PathLike[str],
    repo_id: str | os.PathLike[str],
    private: bool = True,
    *,
    token: str | None = None,
    **options: Any,
) -> dict:
    """Publish a CSV-layout dataset (train.csv and/or test.csv at the root)."""
    return _publish(root_dir, repo_id, private, "csv", token, **options)


def load_editing_dataset(
    repo_id: str | os.PathLike[str],
    split: str | None = None,
    revision: str | None = None,
    *,
    token: str | None = None,
    **kwargs: Any,
):
    """Load a published editing dataset from the Hub or from a local target directory. Returns a
    DatasetDict, or a Dataset when `split` is given. From a local target, `revision` names a tag or
    a version id it keeps (its two newest versions); one it does not hold raises SourceError."""
    import datasets

    repo_id = _where(repo_id)
    if is_local_target(repo_id) or Path(repo_id).is_dir():
        root = local_path(repo_id)
        if not root.is_dir():  # else datasets looks for the path on the Hub too, and says so at length
            from hubpress.errors import SourceError

            raise SourceError(
                f"{root.absolute()} is not a directory: give the local target a publish wrote "
                "(./path), or a Hub repo id (org/name)."
            )
        from hubpress.targets.local import LocalDir

        return datasets.load_dataset(str(LocalDir(root).files_at(revision)), split=split, **kwargs)
    from hubpress.settings import resolve_token
    from hubpress.targets import hub_http

    hub_http.install()
    resolved = token or resolve_token().value
    return datasets.load_dataset(repo_id, split=split, revision=revision, token=resolved or None, **kwargs)


def upload_lora_safetensors(
    src_path: str | os.PathLike[str],
    repo_id: str | os.PathLike[str],
    private: bool = True,
    remote_name: str | None = None,
    commit_message: str = "Upload LoRA weights",
    extra_files: dict[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    token: str | None = None,
    **options: Any,
) -> str:
    """Publish LoRA weights (a .safetensors file or a directory holding one) and extra files
    ({local: remote}). Skips everything whose sha256 the repo already has. Returns the repo URL
    (or the local target path)."""
    from hubpress.flows.params import PublishLoraParams
    from hubpress.settings import get_settings

    repo_id = _where(repo_id)
    params = PublishLoraParams(
        src_path=str(src_path),
        target=repo_id,
        remote_name=remote_name,
        extra_files={os.fspath(local): os.fspath(remote) for local, remote in (extra_files or {}).items()},
        public=not private,
        commit_message=commit_message,
        **options,
    )
    from hubpress.commands.preflight import check_publish_lora

    with call_token(token):
        check_publish_lora(params)  # argument errors surface before Prefect starts
        _run_publish(params)
    if is_local_target(repo_id):
        return str(local_path(repo_id))
    return f"{get_settings().endpoint()}/{repo_id}"


def refresh_dataset(
    config: str | os.PathLike[str] | dict[str, Any] | list[dict[str, Any]],
    target: str | os.PathLike[str],
    *,
    token: str | None = None,
    **options: Any,
) -> dict:
    """Refresh a published dataset from its upstream datasets (docs/refresh.md), as `hubpress
    refresh` does: `config` is the SimpleTuner dataloader JSON file or its parsed JSON (an object
    or a list of backends). Keyword options are those of RefreshParams (seed, stopping,
    max_shard_size, revision, tag, dry_run, public, ...). Returns the refresh result; when nothing
    changed upstream, `nothing_changed` is true and nothing was downloaded or committed."""
    from hubpress.commands.preflight import check_refresh
    from hubpress.flows.params import RefreshParams

    params = RefreshParams(
        config=os.fspath(config) if isinstance(config, os.PathLike) else config,
        target=_where(target),
        **options,
    )
    with call_token(token):
        check_refresh(params)  # argument errors surface before Prefect starts
        return _run_publish(params)


def download_lora(
    repo_id: str | os.PathLike[str],
    filename: str = "pytorch_lora_weights.safetensors",
    revision: str | None = None,
    token: str | None = None,
) -> str:
    """Download LoRA weights from a Hub model repo (or a local target) and return the local path.

    The file name must stay inside the repo; the bytes must be what the Hub lists for the file
    (sha256), and weights must pass the publish's safetensors header check, or the file is removed
    from the cache and a one-line error says why (hubpress.lora.download)."""
    from hubpress.lora.download import download_checked

    return download_checked(_where(repo_id), filename, revision, token)
