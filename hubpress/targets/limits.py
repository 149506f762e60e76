"""Pre-flight checks against the Hub's limits, before a single byte is uploaded."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hubpress.errors import HubLimitError
from hubpress.targets.plan import PublishPlan

MAX_FILES_PER_FOLDER = 10_000
MAX_FILES_PER_REPO = 100_000
MAX_LFS_FILES_PER_COMMIT = 25_000
MAX_REGULAR_BYTES_PER_COMMIT = 1_000_000_000
MAX_FILE_BYTES = 50 * 1000**3  # the Hub refuses single files above 50 GB
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
TEXT_SUFFIXES = (".md", ".json", ".jsonl", ".txt", ".yaml", ".yml", ".csv", ".gitattributes", ".py", ".toml")


@dataclass(frozen=True)
class Limits:
    files_per_folder: int = MAX_FILES_PER_FOLDER
    files_per_repo: int = MAX_FILES_PER_REPO
    lfs_files_per_commit: int = MAX_LFS_FILES_PER_COMMIT
    regular_bytes_per_commit: int = MAX_REGULAR_BYTES_PER_COMMIT
    file_bytes: int = MAX_FILE_BYTES

    @classmethod
    def from_settings(cls, settings) -> Limits:
        """The Hub's limits, as the settings give them (HUBPRESS_HUB_FILES_PER_FOLDER, ...: for a
        Hub with other limits than huggingface.co's)."""
        return cls(
            files_per_folder=settings.hub_files_per_folder,
            files_per_repo=settings.hub_files_per_repo,
            file_bytes=settings.hub_max_file_bytes,
            lfs_files_per_commit=settings.hub_lfs_files_per_commit,
            regular_bytes_per_commit=settings.hub_regular_bytes_per_commit,
        )


# Files a dataset repo holds besides its shards: README.md, manifest.json, .gitattributes.
FILES_BESIDE_SHARDS = 3


def check_planned_shards(shards: int, largest: int, limits: Limits = Limits()) -> None:
    """Before any shard is built or uploaded: refuse a dataset whose shards alone would break a
    limit, with the numbers and the way out. (The plan's check, `check_limits`, runs again before
    the commit with every file the repo holds.)"""
    if shards + FILES_BESIDE_SHARDS > limits.files_per_repo:
        raise HubLimitError(
            f"The dataset would be written as {shards:,} shards; the Hub allows under {limits.files_per_repo:,} "
            "files per repo. Nothing was built or uploaded. Raise --max-shard-size to write fewer, larger shards."
        )
    if shards > limits.lfs_files_per_commit:
        raise HubLimitError(
            f"The dataset would be written as {shards:,} shards, and hubpress publishes in one commit; the Hub "
            f"takes at most {limits.lfs_files_per_commit:,} LFS files per commit. Nothing was built or uploaded. "
            "Raise --max-shard-size to write fewer, larger shards."
        )
    if largest > limits.file_bytes:
        raise HubLimitError(
            f"A shard would be about {largest:,} bytes; the Hub refuses files over {limits.file_bytes:,} bytes. "
            "Nothing was built or uploaded. Lower --max-shard-size (a single sample over the limit cannot be published)."
        )


def entries_per_folder(paths) -> Counter:
    """folder -> how many entries (files and subfolders) it holds, as the Hub counts them."""
    entries: dict[str, set[str]] = {}
    for path in paths:
        parts = path.split("/")
        for depth in range(len(parts)):
            entries.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
    return Counter({folder: len(names) for folder, names in entries.items()})


def goes_to_lfs(path: str, size: int) -> bool:
    return size > LFS_SIZE_THRESHOLD or not path.lower().endswith(TEXT_SUFFIXES)


def check_limits(plan: PublishPlan, existing_paths: set[str], limits: Limits = Limits()) -> None:
    """Raise HubLimitError naming the limit and the fix when the commit would break one."""
    deleted = {c.path for c in plan.of("deleted")}
    final = (existing_paths - deleted) | {c.path for c in plan.changes if c.kind != "deleted"}
    if len(final) > limits.files_per_repo:
        raise HubLimitError(
            f"The repo would hold {len(final):,} files; the Hub allows under {limits.files_per_repo:,}. "
            "Raise --max-shard-size so the dataset is written as fewer, larger shards."
        )
    folders = entries_per_folder(final)
    folder, count = folders.most_common(1)[0] if folders else ("", 0)
    if count > limits.files_per_folder:
        raise HubLimitError(
            f"Folder {folder or '(repo root)'!r} would hold {count:,} files and folders; the Hub allows at most "
            f"{limits.files_per_folder:,} per folder. Raise --max-shard-size to write fewer shards."
        )
    sending = plan.uploads
    for change in sending:
        if change.size > limits.file_bytes:
            raise HubLimitError(
                f"{change.path} is {change.size:,} bytes; the Hub refuses files over {limits.file_bytes:,} bytes. "
                "Lower --max-shard-size (datasets) or split the weights (models)."
            )
    lfs = [c for c in sending if goes_to_lfs(c.path, c.size)]
    if len(lfs) > limits.lfs_files_per_commit:
        raise HubLimitError(
            f"The commit would add {len(lfs):,} LFS files; the Hub allows {limits.lfs_files_per_commit:,} per commit. "
            "Raise --max-shard-size to write fewer shards."
        )
    regular = sum(c.size for c in sending if not goes_to_lfs(c.path, c.size))
    if regular > limits.regular_bytes_per_commit:
        raise HubLimitError(
            f"The commit would carry {regular:,} bytes of regular (non-LFS) files; the Hub allows "
            f"{limits.regular_bytes_per_commit:,}. Large text files should be compressed or sharded."
        )
