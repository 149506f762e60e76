"""The post-training hook's pure parts: what a training output holds, which checkpoint to release,
and which files go where in the model repo.

A training output is a local directory or an `s3://` prefix, listed once. It holds:

- checkpoints: directories named `checkpoint-<step>` (also `checkpoint_<step>`, `ckpt-<step>`,
  `step-<step>`, `global_step<step>`, `checkpoint-<epoch>-<step>`: the last number is the step),
  at any depth, with the weights as direct children: `pytorch_lora_weights.safetensors`, else
  `adapter_model.safetensors`, else the only `*.safetensors` file;
- optionally final weights at the top level (same rule). They are the *final* checkpoint: training
  writes them last, so "latest" picks them over every `checkpoint-*` directory. Their step is the
  trainer's `global_step` (trainer_state.json) or else the highest step seen anywhere;
- a training config at the top level: train_config.yaml, config.yaml, train_config.yml/json,
  config.yml/json, else the only other *.yaml / *.yml / *.json there;
- optionally metrics: metrics.json, metrics.jsonl, trainer_state.json (`log_history`) at the top
  level, and the newest checkpoint's trainer_state.json;
- optionally sample images in samples/ or validation/ (top level or inside a checkpoint).

Which checkpoint to release is hubpress.lora.selection's job; metrics parsing is hubpress.lora.metrics'.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hubpress.errors import SourceError
from hubpress.lora.loaders import PEFT_CONFIG_NAME, PEFT_WEIGHT_NAME
from hubpress.lora.metrics import parse_metrics
from hubpress.lora.weights import DEFAULT_WEIGHT_NAME, PICKLE_SUFFIXES
from hubpress.parsers import MAX_DOCUMENT_BYTES, MAX_METRICS_BYTES, ParseLimitError, load_json, load_yaml
from hubpress.settings import Settings
from hubpress.storage import names
from hubpress.storage.files import UNLISTED, ListedFile, open_storage, unless_outside

WEIGHT_NAMES = (DEFAULT_WEIGHT_NAME, PEFT_WEIGHT_NAME)
CONFIG_NAMES = (
    "train_config.yaml",
    "config.yaml",
    "train_config.yml",
    "config.yml",
    "train_config.json",
    "config.json",
)
METRIC_NAMES = ("metrics.json", "metrics.jsonl", "trainer_state.json")
# JSON files at the top level that are never the training config.
NOT_CONFIG = frozenset({*METRIC_NAMES, "adapter_config.json", "hubpress_release.json", "release.json"})
SAMPLE_DIRS = ("samples", "validation", "sample_images", "validation_images")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")

_CHECKPOINT_DIR = re.compile(r"^(?:checkpoint|ckpt|step|global[-_]?step)[-_]?\d+(?:[-_]\d+)*$", re.IGNORECASE)
_SAMPLE_STEP = re.compile(r"(?:^|[^a-z])(?:global_step|steps?|iter|it)[-_]?(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OutputFile:
    relpath: str  # POSIX, relative to the training output's root
    uri: str  # absolute local path or s3://bucket/key
    size: int
    version: str  # mtime_ns or ETag: with size, the hash-cache key

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    name: str  # "checkpoint-500", or "final" for top-level weights
    step: int | None  # None only for final weights whose step nothing tells
    weights: OutputFile | None  # None when the weights are missing or ambiguous (see `problem`)
    directory: str  # relpath of the checkpoint directory ("" for final weights)
    is_final: bool = False
    samples: tuple[OutputFile, ...] = ()
    adapter_config: OutputFile | None = None  # PEFT's adapter_config.json beside the weights
    problem: str | None = None  # why `weights` is None


@dataclass(frozen=True, slots=True)
class TrainingOutput:
    root: str
    checkpoints: tuple[Checkpoint, ...]  # by step, final weights last
    config: OutputFile | None
    metrics: dict[int, dict[str, float]] = field(hash=False)  # step -> metric -> value
    metric_files: tuple[str, ...]
    samples: tuple[OutputFile, ...]  # top-level samples
    global_step: int | None = None
    problems: tuple[str, ...] = ()  # things skipped while reading (unparseable metrics, ...)

    def metric_names(self) -> list[str]:
        return sorted({name for values in self.metrics.values() for name in values})


@dataclass(frozen=True, slots=True)
class ReleaseFile:
    source_uri: str
    path_in_repo: str
    size: int | None = None
    version: str | None = None


@dataclass(slots=True)
class ReleaseManifest:
    """What a release published, written next to the weights (and kept by the flow's artifacts)."""

    source: str
    checkpoint: str
    checkpoint_step: int | None
    select: str
    files: dict[str, str]  # path_in_repo -> sha256
    sources: dict[str, str] = field(default_factory=dict)  # path_in_repo -> source uri
    commit: str | None = None
    tag: str | None = None
    flow_run_id: str | None = None
    hubpress_version: str = ""
    lora: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.hubpress_version:
            from hubpress import __version__

            self.hubpress_version = __version__

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ReleaseManifest:
        return cls(**json.loads(text))


def default_tag(checkpoint: Checkpoint) -> str:
    """The git tag a release gets unless told otherwise: step-<N>, or 'final' without a step."""
    return f"step-{checkpoint.step}" if checkpoint.step is not None else "final"


# ---------------------------------------------------------------------------------------------
# Discovery


def discover_training_output(uri: str, settings: Settings | None = None) -> TrainingOutput:
    """One listing of the output, plus reads of its (small) metrics files."""
    storage = open_storage(uri, settings)
    listed = [unless_outside(storage, f, "training output") for f in storage.list(report_unlisted=True)]
    if not listed:
        raise SourceError(f"{uri} is empty or does not exist: expected a training output directory.")
    # Devices, FIFOs, sockets and links that loop or dangle: reported, never read.
    unread = [f"{f.relpath!r} {f.version}; left out" for f in listed if f.size == UNLISTED]
    listed = [f for f in listed if f.size != UNLISTED]
    unsafe = [f"{f.relpath!r} {names.why_unsafe(f.relpath)}; left out" for f in listed]
    unsafe = [u for f, u in zip(listed, unsafe, strict=True) if not names.is_safe(f.relpath)]
    files = [
        OutputFile(f.relpath, storage.uri(f.relpath), f.size, f.version)
        for f in listed
        if names.is_safe(f.relpath)
    ]
    wanted = metric_files_to_read(files)
    by_path = {f.relpath: f for f in files}
    sizes = {f.relpath: f.size for f in files}
    too_big = [
        f"{p!r} is over the {MAX_METRICS_BYTES:,}-byte limit for metrics; not read"
        for p in wanted
        if sizes[p] > MAX_METRICS_BYTES
    ]
    texts = {  # each the file listed, not what a link swapped in since leads to
        relpath: storage.read_listed(_as_listed(by_path[relpath]))
        for relpath in wanted
        if sizes[relpath] <= MAX_METRICS_BYTES
    }
    output = build_training_output(storage.root, files, texts)
    if unsafe or unread or too_big:  # reported, never dropped silently, never joined to a path
        output = replace(output, problems=(*output.problems, *unread, *unsafe, *too_big))
    return output


def _checkpoint_dir(relpath: str) -> tuple[str, int] | None:
    """(checkpoint directory relpath, step) of the outermost checkpoint directory holding relpath.

    Outermost, so DeepSpeed's checkpoint-500/global_step500/ stays part of checkpoint-500; and
    nothing below a sample directory counts (samples/step_500/ is a folder of images)."""
    for i, part in enumerate(relpath.split("/")[:-1]):
        if part in SAMPLE_DIRS:
            return None
        if _CHECKPOINT_DIR.match(part):
            return "/".join(relpath.split("/")[: i + 1]), int(re.findall(r"\d+", part)[-1])
    return None


def _pick_weights(children: list[OutputFile], where: str) -> tuple[OutputFile | None, str | None]:
    by_name = {f.name: f for f in children}
    for name in WEIGHT_NAMES:
        if name in by_name:
            return by_name[name], None
    tensors = sorted((f for f in children if f.name.lower().endswith(".safetensors")), key=lambda f: f.name)
    if len(tensors) == 1:
        return tensors[0], None
    if tensors:
        names = ", ".join(f.name for f in tensors)
        return None, f"{where} holds several .safetensors files ({names}) and no {DEFAULT_WEIGHT_NAME}"
    pickles = sorted(f.name for f in children if f.name.lower().endswith(PICKLE_SUFFIXES))
    if pickles:
        return None, (
            f"{where} holds only pickle-based weights ({', '.join(pickles)}); hubpress never unpickles: "
            "save the LoRA as safetensors"
        )
    return (
        None,
        f"{where} holds no weights (looked for {' or '.join(WEIGHT_NAMES)} or a single *.safetensors)",
    )


def _sample_files(files: list[OutputFile], base: str) -> tuple[OutputFile, ...]:
    """Images under the first sample directory (in SAMPLE_DIRS order) directly below `base`."""
    prefix = f"{base}/" if base else ""
    for dirname in SAMPLE_DIRS:
        start = f"{prefix}{dirname}/"
        found = [f for f in files if f.relpath.startswith(start) and f.name.lower().endswith(IMAGE_SUFFIXES)]
        if found:
            return tuple(sorted(found, key=lambda f: f.relpath))
    return ()


def metric_files_to_read(files: list[OutputFile]) -> list[str]:
    """Top-level metrics files and the newest checkpoint's trainer_state.json."""
    wanted = [f.relpath for f in files if f.relpath in METRIC_NAMES]
    newest: tuple[int, str] | None = None
    for f in files:
        if f.name == "trainer_state.json":
            found = _checkpoint_dir(f.relpath)
            if (
                found
                and f.relpath == f"{found[0]}/trainer_state.json"
                and (newest is None or found[1] > newest[0])
            ):
                newest = (found[1], f.relpath)
    if newest:
        wanted.append(newest[1])
    return sorted(wanted)


def _pick_config(top: list[OutputFile]) -> tuple[OutputFile | None, str | None]:
    by_name = {f.name: f for f in top}
    for name in CONFIG_NAMES:
        if name in by_name:
            return by_name[name], None
    others = sorted(
        (f for f in top if f.name.lower().endswith((".yaml", ".yml", ".json")) and f.name not in NOT_CONFIG),
        key=lambda f: f.name,
    )
    if len(others) == 1:
        return others[0], None
    if others:
        names = ", ".join(f.name for f in others)
        return (
            None,
            f"several config candidates at the top level ({names}); none released: name one config.yaml",
        )
    return None, None


def build_training_output(
    root: str, files: list[OutputFile], metric_texts: dict[str, bytes]
) -> TrainingOutput:
    """The typed view of a listed training output (pure: no I/O)."""
    problems: list[str] = []
    groups: dict[str, tuple[int, list[OutputFile]]] = {}
    top: list[OutputFile] = []
    for f in files:
        found = _checkpoint_dir(f.relpath)
        if found:
            directory, step = found
            groups.setdefault(directory, (step, []))[1].append(f)
        elif "/" not in f.relpath:
            top.append(f)

    metrics, global_step = parse_metrics(metric_texts, problems)
    checkpoints: list[Checkpoint] = []
    for directory, (step, members) in groups.items():
        children = [f for f in members if f.relpath == f"{directory}/{f.name}"]
        weights, problem = _pick_weights(children, directory)
        checkpoints.append(
            Checkpoint(
                name=directory.rsplit("/", 1)[-1],
                step=step,
                weights=weights,
                directory=directory,
                samples=_sample_files(members, directory),
                problem=problem,
                adapter_config=_adapter_config(children),
            )
        )
    checkpoints.sort(key=lambda c: (c.step, c.directory))

    top_tensors = [f for f in top if f.name.lower().endswith(".safetensors")]
    if top_tensors:
        weights, problem = _pick_weights(top_tensors, "the top level")
        known = [
            s
            for s in (global_step, max(metrics, default=None), *(c.step for c in checkpoints))
            if s is not None
        ]
        final_step = global_step if global_step is not None else max(known, default=None)
        checkpoints.append(
            Checkpoint(
                name="final",
                step=final_step,
                weights=weights,
                directory="",
                is_final=True,
                problem=problem,
                adapter_config=_adapter_config(top),
            )
        )

    config, problem = _pick_config(top)
    if problem:
        problems.append(problem)
    return TrainingOutput(
        root=root,
        checkpoints=tuple(checkpoints),
        config=config,
        metrics=metrics,
        metric_files=tuple(sorted(metric_texts)),
        samples=_sample_files(files, ""),
        global_step=global_step,
        problems=tuple(problems),
    )


def usable(checkpoint: Checkpoint) -> Checkpoint:
    if checkpoint.weights is None:
        raise SourceError(f"Cannot release {checkpoint.name}: {checkpoint.problem}.")
    return checkpoint


# ---------------------------------------------------------------------------------------------
# What goes into the repo


def _step_samples(samples: tuple[OutputFile, ...], step: int | None) -> list[OutputFile]:
    """Top-level samples for one checkpoint: those whose path names its step (or, failing that, the
    latest earlier step); samples whose path names no step are always kept."""
    stepped: dict[int, list[OutputFile]] = {}
    plain: list[OutputFile] = []
    for f in samples:
        m = list(_SAMPLE_STEP.finditer(f.relpath))
        (stepped.setdefault(int(m[-1].group(1)), []) if m else plain).append(f)
    if not stepped:
        return plain
    eligible = [s for s in stepped if step is None or s <= step]
    return plain + (stepped[max(eligible)] if eligible else [])


def _config_repo_name(config: OutputFile) -> str:
    return "train_config.json" if config.name.lower().endswith(".json") else "train_config.yaml"


def _adapter_config(children: list[OutputFile]) -> OutputFile | None:
    return next((f for f in children if f.name == PEFT_CONFIG_NAME), None)


def release_files(output: TrainingOutput, checkpoint: Checkpoint) -> list[ReleaseFile]:
    """Weights as pytorch_lora_weights.safetensors (a PEFT adapter, adapter_model.safetensors with its
    adapter_config.json, keeps PEFT's names), the config as train_config.yaml/json, sample images
    under samples/ (the checkpoint's own, else the top-level ones for its step)."""
    weights = usable(checkpoint).weights
    assert weights is not None
    adapter = checkpoint.adapter_config if weights.name == PEFT_WEIGHT_NAME else None
    files = [
        ReleaseFile(
            weights.uri, PEFT_WEIGHT_NAME if adapter else DEFAULT_WEIGHT_NAME, weights.size, weights.version
        )
    ]
    if adapter is not None:
        files.append(ReleaseFile(adapter.uri, PEFT_CONFIG_NAME, adapter.size, adapter.version))
    if output.config is not None:
        c = output.config
        files.append(ReleaseFile(c.uri, _config_repo_name(c), c.size, c.version))
    samples = list(checkpoint.samples) or _step_samples(output.samples, checkpoint.step)
    for f in samples:
        # Keep the path below the sample directory (which is the first component after `base`).
        base = f"{checkpoint.directory}/" if checkpoint.samples and checkpoint.directory else ""
        inner = f.relpath[len(base) :].split("/", 1)[1]
        path = names.path_in_repo(f"samples/{inner}", what=f"sample {f.relpath!r}")
        files.append(ReleaseFile(f.uri, path, f.size, f.version))
    return files


def parse_training_config(data: bytes, name: str) -> dict[str, Any]:
    """A training config's content (YAML or JSON), for the model card's summary."""
    try:
        doc = load_json(data, name) if name.lower().endswith(".json") else load_yaml(data, name)
    except ParseLimitError as exc:
        raise SourceError(f"{exc} Fix the file or release without a config summary.") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SourceError(f"{name} holds a {type(doc).__name__}, not a mapping of settings.")
    return doc


def load_training_config(output: TrainingOutput, settings: Settings | None = None) -> dict[str, Any] | None:
    """The parsed training config, or None when the output has none."""
    if output.config is None:
        return None
    if output.config.size > MAX_DOCUMENT_BYTES:
        raise SourceError(
            f"{output.config.relpath} is larger than the {MAX_DOCUMENT_BYTES:,}-byte limit for a document. "
            "Fix the file or release without a config summary."
        )
    storage = open_storage(output.root, settings)
    return parse_training_config(storage.read_listed(_as_listed(output.config)), output.config.relpath)


def _as_listed(f: OutputFile) -> ListedFile:
    return ListedFile(f.relpath, f.size, f.version)
