"""Runtime settings: plain pydantic data resolved from flags and SLUICE_* variables.

The operator configures pods through environment variables and people use flags;
one resolver merges both (a flag wins) so the two can never drift apart. Nothing
here reads the process environment by itself: the caller passes it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sluice_runtime.digest import parse_digest

ENV_PREFIX = "SLUICE_"

Device = Literal["auto", "cpu", "cuda"]


class RuntimeSettings(BaseModel):
    """Everything `sluice-runtime serve` needs; field names are the flags with '_' for '-'."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model_name: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    model_uri: str = Field(min_length=1)
    digest: str | None = None
    host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=0, le=65535)
    grpc_port: int = Field(default=8081, ge=0, le=65535)
    max_batch_size: int = Field(default=0, ge=0)
    max_batch_delay_us: int = Field(default=2000, ge=0)
    max_queue_size: int = Field(default=1024, ge=1)
    warmup_requests: int = Field(default=1, ge=0)
    device: Device = "auto"
    cuda_wait: Literal["block", "spin"] = "block"
    intra_op_threads: int = Field(default=0, ge=0)
    cache_dir: Path = Field(default=Path("~/.cache/sluice/models"), validate_default=True)
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    drain_seconds: float = Field(default=25.0, gt=0)
    shadow_url: str | None = None
    shadow_percent: float = Field(default=0.0, ge=0, le=100)
    workers: int = Field(default=1, ge=1, le=64)

    @field_validator("digest")
    @classmethod
    def _digest_form(cls, value: str | None) -> str | None:
        return None if value is None else parse_digest(value)

    @field_validator("shadow_url")
    @classmethod
    def _shadow_url_form(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("cache_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def max_batch_delay_seconds(self) -> float:
        """The batching deadline in the unit the event loop uses."""
        return self.max_batch_delay_us / 1_000_000


class SettingsError(ValueError):
    """Settings that cannot be used, with every problem named by flag and variable."""


def flag_name(field: str) -> str:
    """`max_batch_size` -> `--max-batch-size`."""
    return "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    """`max_batch_size` -> `SLUICE_MAX_BATCH_SIZE`."""
    return ENV_PREFIX + field.upper()


def resolve_settings(flags: Mapping[str, Any], env: Mapping[str, str]) -> RuntimeSettings:
    """Merge flags (None = not given) over SLUICE_* variables over defaults.

    An empty variable counts as unset, so a manifest can blank out an optional value.
    """
    values: dict[str, Any] = {}
    for field in RuntimeSettings.model_fields:
        flag = flags.get(field)
        if flag is not None:
            values[field] = flag
            continue
        variable = env.get(env_name(field), "")
        if variable != "":
            values[field] = variable
    try:
        return RuntimeSettings(**values)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else "settings"
            where = f"{flag_name(field)} / {env_name(field)}"
            problems.append(f"{where}: {item['msg']}")
        raise SettingsError("invalid runtime settings: " + "; ".join(problems)) from None
