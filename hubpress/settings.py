"""One settings object for the whole project.

Values come from HUBPRESS_* environment variables (or a .env file) and can be overridden per
flow run by passing a `Settings` (or a dict of overrides) to a flow. Secrets are SecretStr so
that they never print in reprs, logs, artifacts or pydantic-generated UI forms.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hubpress.errors import ConfigError, MissingTokenError, SettingsFileError, hide_userinfo

DEFAULT_ENDPOINT = "https://huggingface.co"
DOTENV = ".env"  # settings read from the working directory's .env too (pydantic-settings)


def hubpress_home() -> Path:
    """Where hubpress keeps its state for this user: staging, caches and the local Prefect server.

    HUBPRESS_HOME when set (one per environment: `HUBPRESS_HOME=~/.hubpress-dev` keeps a dev
    server, its port, staging and caches apart from production's), else $XDG_STATE_HOME/hubpress
    (by default ~/.local/state/hubpress). Never the working directory: the no-op fast path, stage
    reuse and the server are the same wherever a command, `serve` or a worker starts."""
    explicit = os.environ.get("HUBPRESS_HOME")
    if explicit:
        return Path(explicit).expanduser().absolute()
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home).expanduser().absolute() / "hubpress"


# Where a token may come from, in lookup order. Used in messages, so a person knows every way.
TOKEN_SOURCES_HELP = (
    "pass token=... (Python API), "
    "name a Prefect Secret block in HUBPRESS_TOKEN_SECRET_BLOCK, "
    "set HUBPRESS_TOKEN, HF_TOKEN, HUGGING_FACE_HUB_TOKEN or HUGGINGFACE_HUB_TOKEN, "
    "or log in with `hf auth login` (huggingface_hub's token file)"
)


class Settings(BaseSettings):
    """hubpress settings. Every field reads HUBPRESS_<FIELD> from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="HUBPRESS_", env_file=DOTENV, env_file_encoding="utf-8", extra="ignore"
    )

    hub_endpoint: str | None = Field(
        default=None,
        description="Hub API endpoint. Defaults to HF_ENDPOINT, then https://huggingface.co.",
    )
    token: SecretStr | None = Field(default=None, description="Hub token (prefer a Secret block).")
    token_secret_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block that holds the Hub token."
    )
    staging: str = Field(
        default_factory=lambda: str(hubpress_home() / "staging"),
        description="Local directory or s3://bucket/prefix for staging (default: HUBPRESS_HOME/staging).",
    )
    cache_dir: str = Field(
        default_factory=lambda: str(hubpress_home() / "cache"),
        description="Hash and validation caches (default: HUBPRESS_HOME/cache).",
    )
    staging_max_age_hours: float = Field(
        default=168,
        ge=0,  # a negative age would sweep every shard kept for resume, as `staging clean --all`
        allow_inf_nan=False,
        description="Sealed shards no run uses are swept from staging after this age.",
    )
    staging_max_size: str = Field(
        default="100GB", description="Above this, the oldest sealed shards no run uses are swept."
    )

    @field_validator("staging_max_size")
    @classmethod
    def _a_size(cls, value: str) -> str:
        # Checked where the settings are read (before any command's work), not by the sweep at the
        # end of a publish's flow run, which failed there in a line that named no setting.
        from hubpress.shards.sizes import parse_size

        try:
            parse_size(value)
        except ConfigError as exc:
            raise ValueError(f"{str(exc).rstrip('.')} (set by HUBPRESS_STAGING_MAX_SIZE).") from None
        return value

    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, moto).")
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_region: str | None = None
    aws_credentials_block: str | None = Field(
        default=None, description="Name of a prefect-aws AwsCredentials block to use for S3."
    )
    s3_max_attempts: int = Field(default=8, description="botocore retry attempts (adaptive mode).")
    # The deadline policy of every outbound call (hubpress.deadlines; docs/reliability.md).
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to open a connection (Hub, S3).")
    read_timeout: float = Field(
        default=60.0, gt=0, description="Longest silence, in seconds, inside an answer (Hub, S3)."
    )
    request_deadline: float = Field(
        default=120.0,
        gt=0,
        description="Seconds one request may take to be answered, and again to send its body, "
        "plus its declared size at min_transfer_rate (Hub and upstream datasets).",
    )
    min_transfer_rate: float = Field(
        default=256 * 1024, gt=0, description="Slowest transfer, in bytes per second, a deadline allows for."
    )
    xet_local_cas: str | None = Field(
        default=None,
        description="Folders (os.pathsep-separated) a Hub may name as its Xet storage with local://PATH: "
        "only a test Hub whose CAS is a folder here. Any other local:// storage, or one that is not "
        "http(s), is refused before hf_xet reads or writes it.",
    )
    hub_max_concurrency: int = Field(default=4, description="Parallel Hub requests (uploads, hashes).")
    hub_files_per_folder: int = Field(
        default=10_000, ge=1, description="The Hub's limit of entries in one folder."
    )
    hub_files_per_repo: int = Field(
        default=100_000, ge=1, description="The Hub's limit of files in one repo."
    )
    hub_max_file_bytes: int = Field(
        default=50 * 1000**3, ge=1, description="The Hub's limit on one file's size."
    )
    hub_lfs_files_per_commit: int = Field(
        default=25_000, ge=1, description="The Hub's limit of LFS files one commit may add."
    )
    hub_regular_bytes_per_commit: int = Field(
        default=1_000_000_000, ge=1, description="The Hub's limit of regular (non-LFS) bytes in one commit."
    )
    hub_max_wait_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Longest wait a 429/503 answer (RateLimit, Retry-After) is honoured for; longer stops the call.",
    )
    hub_retry_base_seconds: float = Field(
        default=0.5,
        ge=0,
        description="First backoff of a Hub call that failed transiently (5xx, a dropped connection); "
        "it doubles with each of the 6 attempts, with full jitter.",
    )
    build_concurrency: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        description="Shards built at once per process; each holds one row group in memory.",
    )
    fetch_spool_bytes: int = Field(
        default=10 * 10**9,
        description="Bytes of new S3 source objects intake keeps on local disk for the build, so "
        "each is fetched once (hubpress.storage.fetched); 0 fetches them again at build time.",
    )

    def endpoint(self) -> str:
        """The Hub endpoint, or ConfigError when it carries credentials (`http://user:pw@host`):
        huggingface_hub would send them as Basic auth in place of the token, and print them."""
        url = (self.hub_endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        parts = urlsplit(url)
        if parts.username or parts.password or "@" in parts.netloc:
            setting = "HUBPRESS_HUB_ENDPOINT" if self.hub_endpoint else "HF_ENDPOINT"
            raise ConfigError(
                f"{setting} {hide_userinfo(url)} carries a user name or password: hubpress refuses "
                "credentials in the endpoint URL (they would replace the token as Basic auth). Remove "
                f"'user:password@' from {setting} and give the token with HF_TOKEN or HUBPRESS_TOKEN."
            )
        return url

    def with_overrides(self, overrides: dict[str, Any] | None) -> Settings:
        if not overrides:
            return self
        return self.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def get_settings(overrides: dict[str, Any] | Settings | None = None) -> Settings:
    if isinstance(overrides, Settings):
        return overrides
    try:
        settings = Settings()
    except UnicodeDecodeError as exc:
        # A project's own .env in the working directory (another tool's, Latin-1 or UTF-16) was a
        # traceback in every command run there, though none of its keys need be hubpress's.
        raise SettingsFileError(
            f"{Path(DOTENV).absolute()} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}); hubpress reads HUBPRESS_* settings from a .env file in the working directory: "
            "save it as UTF-8, or run hubpress from another directory."
        ) from None
    return settings.with_overrides(overrides)


@dataclass(frozen=True)
class ResolvedToken:
    """A token and where it came from. `repr` and `str` never show the token itself."""

    value: str | None
    source: str  # e.g. "HF_TOKEN", "Prefect Secret block 'hub-token'", "anonymous"

    def __repr__(self) -> str:
        return f"ResolvedToken(source={self.source!r})"

    __str__ = __repr__


def _from_secret_block(name: str) -> str | None:
    try:
        from prefect.blocks.system import Secret

        return Secret.load(name).get()
    except Exception:  # a missing block is reported by the caller as "not found"
        return None


# A `token=` given to the Python API, for the calls made inside it (the flow run and its tasks,
# which Prefect runs in copies of the caller's context). A value in a context variable: another
# thread or call never sees it, unlike os.environ, and the Prefect API never stores it.
_CALL_TOKEN: ContextVar[str | None] = ContextVar("hubpress_call_token", default=None)


@contextlib.contextmanager
def call_token(token: str | None) -> Iterator[None]:
    """Make an explicit token win for everything called inside this block, in this context only."""
    if not token:
        yield
        return
    reset = _CALL_TOKEN.set(token)
    try:
        yield
    finally:
        _CALL_TOKEN.reset(reset)


def resolve_token(explicit: str | None = None, settings: Settings | None = None) -> ResolvedToken:
    """Find a Hub token: argument, Secret block, then the environment variables, in that order."""
    settings = settings or get_settings()
    # Every source is stripped, as the HF_* variables below: a token read from a file or a secret
    # store often ends in a newline, which made an illegal Authorization header that the error
    # blamed on the endpoint.
    explicit = (explicit or _CALL_TOKEN.get() or "").strip()
    if explicit:
        return ResolvedToken(explicit, "the token argument")
    if settings.token is not None and settings.token.get_secret_value().strip():
        return ResolvedToken(settings.token.get_secret_value().strip(), "HUBPRESS_TOKEN")
    if settings.token_secret_block:
        value = (_from_secret_block(settings.token_secret_block) or "").strip()
        if value:
            return ResolvedToken(value, f"Prefect Secret block {settings.token_secret_block!r}")
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN"):
        value = os.environ.get(var, "").strip()
        if value:
            return ResolvedToken(value, var)
    # huggingface_hub's own lookup: the token `hf auth login` saved (and its other sources).
    from huggingface_hub import get_token

    value = (get_token() or "").strip()
    if value:
        return ResolvedToken(value, f"huggingface_hub's login ({token_file()})")
    return ResolvedToken(None, "anonymous (no token found)")


def token_file() -> str:
    """The file `hf auth login` writes the token to (HF_TOKEN_PATH, by default HF_HOME/token)."""
    from huggingface_hub import constants

    return constants.HF_TOKEN_PATH


def require_write_token(explicit: str | None = None, settings: Settings | None = None) -> ResolvedToken:
    """Like resolve_token, but a write without a token fails before any work, naming every way."""
    token = resolve_token(explicit, settings)
    if token.value is None:
        raise MissingTokenError(
            f"No Hugging Face token found for a write to the Hub (looked in the token argument, "
            f"HUBPRESS_TOKEN, HUBPRESS_TOKEN_SECRET_BLOCK, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, "
            f"HUGGINGFACE_HUB_TOKEN and {token_file()}). To provide one, {TOKEN_SOURCES_HELP}."
        )
    return token
