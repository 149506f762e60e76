"""Flow parameters as pydantic models: the Prefect UI renders them as forms with titles,
descriptions and defaults, and a bad value is refused before a run starts. The CLI and the
Python API build the same models, so every entry point validates the same way."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from hubpress.errors import ConfigError
from hubpress.sources.formats import DEFAULT_MAX_PIXELS
from hubpress.targets.base import check_repo_id, is_local_target


def _check_target(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("a target is required: a Hub repo id (org/name) or a local directory (./path)")
    if not is_local_target(value):
        try:
            check_repo_id(value)
        except ConfigError as exc:  # pydantic reports ValueError as a validation message
            raise ValueError(str(exc)) from None
    return value


def _check_size(value: str | int) -> str | int:
    from hubpress.shards.sizes import parse_size

    try:
        parse_size(value)
    except (ConfigError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    return value


def _check_ref(value: str | None) -> str | None:
    """A branch or tag as git accepts it (the name gate's rule), checked before any work."""
    from hubpress.storage.names import git_ref

    if value is None:
        return None
    try:
        return git_ref(value, what="ref")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


# A Hub license identifier (docs/hub/repositories-licenses: apache-2.0, cc-by-nc-4.0, openrail++,
# llama2, other): lowercase, no spaces. The Hub checks a card's `license` when it is committed, so a
# value no identifier can be is refused here, before the build, not at the commit after it.
_LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")


def _check_license(value: str | None) -> str | None:
    if value is None or _LICENSE_ID.fullmatch(value):
        return value
    raise ValueError(
        f"license {value!r} is not a Hub license identifier (lowercase, no spaces: e.g. apache-2.0, "
        "cc-by-4.0, other; the list: https://huggingface.co/docs/hub/repositories-licenses)"
    )


def _check_repo_path(value: str | None) -> str | None:
    """A path a file takes in the repo, through the name gate: relative, no '..', no empty parts."""
    from hubpress.storage.names import path_in_repo

    if value is None:
        return None
    try:
        return path_in_repo(value, what="path in the repo")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def _apart(source: str, target: str) -> None:
    """A local target must not be, contain or lie inside the source it is written from."""
    from hubpress.storage.names import overlap

    if is_local_target(target):
        why = overlap(source, target)
        if why:
            raise ValueError(
                f"{why}: choose a target directory outside the source (and the source outside it)"
            )


def _local_has_no_branches(target: str, revision: str, create_pr: bool = False) -> None:
    """A local directory keeps one line of versions: a branch or a pull request asked of it would
    be ignored, and the publish would move its current files instead."""
    if not is_local_target(target):
        return
    if create_pr:
        raise ValueError("--create-pr needs a Hub repo; a local directory has no pull requests")
    if revision != "main":
        raise ValueError(
            f"a local directory has no branches, so --revision {revision!r} cannot be honoured: omit it "
            "(the directory's files are its main), or publish to a Hub repo"
        )


def _blank_is_unset(value: Any) -> Any:
    """An optional text left empty (the form's empty box, `--tag ""`) means "not set": None."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _file_uri_as_path(value: Any) -> Any:
    """A file:// URI becomes the path it names, decoded once here (`my%20data` is `my data`), so
    every later reader sees a plain path."""
    if isinstance(value, str) and value.strip().startswith("file://"):
        from hubpress.storage.names import file_uri_path

        try:
            return file_uri_path(value.strip())
        except ConfigError as exc:  # pydantic reports ValueError as a validation message
            raise ValueError(str(exc)) from None
    return value


# A source, weights file or training output: a local path (or file:// URI) or s3://bucket/prefix.
LocalOrS3 = Annotated[str, BeforeValidator(_file_uri_as_path)]
# Shared by every parameter model that publishes (datasets, LoRA, releases, refreshes).
TargetStr = Annotated[str, BeforeValidator(_file_uri_as_path), AfterValidator(_check_target)]
ShardSize = Annotated[str, AfterValidator(_check_size)]
RefStr = Annotated[str, AfterValidator(_check_ref)]
RepoPath = Annotated[str, AfterValidator(_check_repo_path)]


def _no_default_in_schema(schema: dict[str, Any]) -> None:
    """Left out, not `"default": null`: Prefect's server then accepts null for the field (it adds
    null to an optional field's types when it validates a run's parameters, unless a default is
    given), and the form shows an empty box."""
    schema.pop("default", None)


# An optional text field: None (unset) in Python, a plain text box in the deployment's form. Prefect's
# UI renders `str | None` (anyOf string/null) as a toggle between a string and null; the schema says
# "a string" instead, and an empty value validates to None (_blank_is_unset), as does null.
OPTIONAL_TEXT = (
    BeforeValidator(_blank_is_unset),
    WithJsonSchema({"type": "string"}),
    Field(json_schema_extra=_no_default_in_schema),
)
OptionalStr = Annotated[str | None, *OPTIONAL_TEXT]
OptionalRef = Annotated[RefStr | None, *OPTIONAL_TEXT]
OptionalRepoPath = Annotated[RepoPath | None, *OPTIONAL_TEXT]

# Fields that several flows share, each declared once (title, description, checks); the models
# below only give the default. The CLI options and the deployment forms are generated from them.
StagingField = Annotated[
    OptionalStr,
    BeforeValidator(_file_uri_as_path),  # the folder the preflight checks is the one staged into
    Field(title="Staging", description="Local directory or s3://bucket/prefix (default: HUBPRESS_STAGING)."),
]
MaxShardSizeField = Annotated[ShardSize, Field(title="Max shard size", description="e.g. 500MB, 1GB.")]
PublicField = Annotated[bool, Field(title="Public", description="New repos are private unless this is set.")]
BranchField = Annotated[RefStr, Field(title="Branch", description="Created from main when missing.")]
TagField = Annotated[OptionalRef, Field(title="Tag the new commit")]
DryRunField = Annotated[
    bool, Field(title="Dry run", description="Plan only: print what would change and stop.")
]
CardLicenseField = Annotated[str, AfterValidator(_check_license), Field(title="License (card)")]
PrettyNameField = Annotated[OptionalStr, Field(title="Pretty name (card)")]
CommitMessageField = Annotated[OptionalStr, Field(title="Commit message")]
BaseModelField = Annotated[OptionalStr, Field(title="Base model (card)")]
LoraLicenseField = Annotated[OptionalStr, AfterValidator(_check_license), Field(title="License (card)")]


class PublishDatasetParams(BaseModel):
    """Publish an image-editing dataset (qflux folder or CSV layout) to the Hub or a local directory."""

    model_config = ConfigDict(extra="forbid", title="Publish dataset")

    source: LocalOrS3 = Field(
        title="Source", description="Dataset root: a local directory or s3://bucket/prefix."
    )
    target: TargetStr = Field(
        title="Target",
        description="Hub dataset repo id (org/name), or a local directory (/path, ./path, file://).",
    )
    layout: Literal["auto", "folder", "csv"] = Field(
        "auto", title="Layout", description="auto detects folder or CSV."
    )
    on_error: Literal["skip", "fail"] = Field(
        "skip",
        title="On error",
        description="skip: leave bad samples out and report them; fail: stop before building.",
    )
    allow_missing_target: bool = Field(False, title="Allow missing target images in train")
    prompt_encoding: str = Field(
        "utf-8", title="Prompt encoding", description="Encoding of the prompt .txt files."
    )
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS,
        gt=0,
        title="Max pixels per image",
        description="Largest image (width x height) decoded: the decompression-bomb guard (Pillow's default).",
    )
    staging: StagingField = None
    max_shard_size: MaxShardSizeField = "500MB"
    public: PublicField = False
    revision: BranchField = "main"
    tag: TagField = None
    create_pr: bool = Field(False, title="Open a pull request instead of committing to the branch")
    dry_run: DryRunField = False
    fan_out: Literal["none", "splits"] = Field(
        "none",
        title="Fan out",
        description="splits: build each split's shards in its own subflow run (a child run in the UI).",
    )
    license: CardLicenseField = "other"
    pretty_name: PrettyNameField = None
    tags: list[str] = Field(default_factory=list, title="Extra card tags")
    commit_message: CommitMessageField = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a source directory or s3:// prefix is required")
        return value

    @field_validator("prompt_encoding")
    @classmethod
    def _prompt_encoding(cls, value: str) -> str:
        # Refused with the other option values (exit 2, before Prefect), not inside the run.
        from hubpress.sources.policy import IntakeOptions

        try:
            IntakeOptions(prompt_encoding=value).check()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _target_apart_from_source(self):
        _apart(self.source, self.target)
        _local_has_no_branches(self.target, self.revision, self.create_pr)
        return self


class PublishLoraParams(BaseModel):
    """Publish LoRA safetensors weights (and extra files) to a Hub model repo or a local directory."""

    model_config = ConfigDict(extra="forbid", title="Publish LoRA")

    src_path: LocalOrS3 = Field(
        title="Weights", description="A .safetensors file, or a directory holding one."
    )
    target: TargetStr = Field(
        title="Target", description="Hub model repo id (org/name) or a local directory."
    )
    remote_name: OptionalRepoPath = Field(
        None,
        title="Remote file name",
        description="Default: pytorch_lora_weights.safetensors (adapter_model.safetensors for a PEFT adapter folder)",
    )
    extra_files: dict[str, RepoPath] = Field(
        default_factory=dict, title="Extra files {local path: path in repo}"
    )
    public: PublicField = False
    revision: BranchField = "main"
    tag: TagField = None
    dry_run: DryRunField = False
    base_model: BaseModelField = None
    license: LoraLicenseField = None
    commit_message: CommitMessageField = None

    @field_validator("remote_name")
    @classmethod
    def _remote_name(cls, value: str | None) -> str | None:
        # Loaders pick the format by the name: diffusers and PEFT torch.load (unpickle) anything
        # not named .safetensors, so safetensors bytes published as `x.bin` would not load.
        if value is not None and not value.lower().endswith(".safetensors"):
            raise ValueError(
                f"{value!r} does not end in .safetensors: the weights are safetensors, and loaders read a "
                "file by its extension. Name it e.g. my_lora.safetensors."
            )
        return value

    @model_validator(mode="after")
    def _target_apart_from_source(self):
        _apart(self.src_path, self.target)
        _local_has_no_branches(self.target, self.revision)
        return self


class ReleaseTrainingRunParams(BaseModel):
    """Release the chosen checkpoint of a finished training run (the post-training hook)."""

    model_config = ConfigDict(extra="forbid", title="Release training run")

    output_uri: LocalOrS3 = Field(
        title="Training output", description="Local directory or s3://bucket/prefix."
    )
    repo_id: TargetStr = Field(
        title="Target", description="Hub model repo id (org/name) or a local directory."
    )
    select: str = Field(
        "latest",
        title="Checkpoint",
        description="latest, step:N, or best:METRIC[:min|max] (e.g. best:loss:min).",
    )
    tag: OptionalRef = Field(None, title="Tag", description="Default: step-<N> of the chosen checkpoint.")
    base_model: BaseModelField = None
    license: LoraLicenseField = None
    public: PublicField = False
    revision: BranchField = "main"

    @field_validator("select")
    @classmethod
    def _select(cls, value: str) -> str:
        from hubpress.lora.selection import parse_select

        try:
            parse_select(value)
        except Exception as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _target_apart_from_source(self):
        _apart(self.output_uri, self.repo_id)
        _local_has_no_branches(self.repo_id, self.revision)
        return self


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
    stopping: Literal["all_rows", "first_exhausted", "all_exhausted"] = Field(
        "all_rows",
        title="Mixing rule",
        description=(
            "all_rows (default): every kept row of every backend once, in a seeded order drawn by probability; "
            "first_exhausted: stop when a backend runs out (leaves rows out, counted); "
            "all_exhausted: repeat small backends until all are used (repeats counted)."
        ),
    )
    staging: StagingField = None
    max_shard_size: MaxShardSizeField = "500MB"
    public: PublicField = False
    revision: BranchField = "main"
    tag: TagField = None
    dry_run: DryRunField = False
    license: CardLicenseField = "other"
    pretty_name: PrettyNameField = None
    commit_message: CommitMessageField = None

    @model_validator(mode="after")
    def _no_branch_of_a_local_directory(self):
        _local_has_no_branches(self.target, self.revision)
        return self

    @field_validator("config")
    @classmethod
    def _config(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("a dataloader config is required: a path to its JSON file, or the JSON itself")
        if isinstance(value, list) and not value:
            raise ValueError("the dataloader config list is empty")
        return value


def deployment_parameters(params: BaseModel) -> dict[str, Any]:
    """A deployment's saved `parameters` for the flow's `params`: unset optional fields are left
    out (the form's defaults apply), as Prefect checks saved parameters against the schema without
    admitting null where the schema says "string" (a run's parameters may hold null)."""
    return {"params": params.model_dump(mode="json", exclude_none=True)}


# The organisation the scheduled deployments' example targets name (hubpress.deployments.serve,
# prefect.yaml): a placeholder a person replaces before switching the schedule on. A fixed name, not
# the editable examples themselves, so a user's own values written there are never refused.
EXAMPLE_ORG = "YOUR-ORG"


def refuse_example_parameters(target: str) -> None:
    """A run whose target is still a deployment's example (`YOUR-ORG/...`): the schedule was
    switched on before the parameters were filled in. One line saying so, at the run's start,
    instead of a crash or an error about `YOUR-BUCKET`."""
    if not is_local_target(target) and target.split("/", 1)[0] == EXAMPLE_ORG:
        raise ConfigError(
            f"this run has the deployment's example parameters (target {target}): fill in the deployment's "
            "parameters (Prefect UI: Deployments, the deployment, Edit; prefect.yaml for a work pool), then "
            "run it again"
        )
