"""The refresh flow's parameters as a pydantic model: the Prefect UI renders it as a form, and
the CLI and the Python API build the same model, so every entry point validates the same way."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hubpress.params import ShardSize, TargetStr


class RefreshParams(BaseModel):
    """Refresh a published dataset from upstream Hub datasets (a SimpleTuner dataloader config)."""

    model_config = ConfigDict(extra="forbid", title="Refresh dataset")

    config: str | dict[str, Any] | list[dict[str, Any]] = Field(
        title="Dataloader config",
        description=(
            "SimpleTuner backend JSON (type huggingface or local): a path to the JSON file, "
            "or the backend object / list of backends itself."
        ),
    )
    target: TargetStr = Field(
        title="Target",
        description="Hub dataset repo id (org/name), or a local directory (/path, ./path, file://).",
    )
    seed: int = Field(0, ge=0, title="Seed", description="Decides the order of a mix of several backends.")
    stopping: Literal["first_exhausted", "all_exhausted"] = Field(
        "first_exhausted",
        title="Mixing stops when",
        description="first_exhausted: no row repeats; all_exhausted: small backends repeat until all are used.",
    )
    staging: str | None = Field(
        None,
        title="Staging",
        description="Local directory or s3://bucket/prefix (default: HUBPRESS_STAGING).",
    )
    max_shard_size: ShardSize = Field("500MB", title="Max shard size", description="e.g. 500MB, 1GB.")
    public: bool = Field(False, title="Public", description="New repos are private unless this is set.")
    revision: str = Field("main", title="Branch", description="Created from main when missing.")
    tag: str | None = Field(None, title="Tag the new commit")
    dry_run: bool = Field(False, title="Dry run", description="Plan only: print what would change and stop.")
    license: str = Field("other", title="License (card)")
    pretty_name: str | None = Field(None, title="Pretty name (card)")
    commit_message: str | None = Field(None, title="Commit message")

    @field_validator("config")
    @classmethod
    def _config(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("a dataloader config is required: a path to its JSON file, or the JSON itself")
        if isinstance(value, list) and not value:
            raise ValueError("the dataloader config list is empty")
        return value
