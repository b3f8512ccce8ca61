"""How downloads behave: trust, credentials, timeouts and retries.

Read from `SLUICE_*` environment variables at call time (never at import), so
`serve` and `fetch` honour the same settings; `fetch`/`resolve` flags override
them. Values that are file paths name the secret's file; secrets themselves
never pass through flags, environment dumps or logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sluice_runtime.errors import ModelLoadError
from sluice_runtime.registry.retry import RetryPolicy

_ADDRESSING_STYLES = ("auto", "path", "virtual")


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """Settings shared by every registry; defaults suit a pod fetching from a cloud store."""

    ca_bundle: Path | None = None
    bearer_token_file: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    s3_addressing_style: str | None = None

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ModelLoadError("fetch timeouts must be positive")
        if self.s3_addressing_style not in (None, *_ADDRESSING_STYLES):
            raise ModelLoadError(
                f"SLUICE_S3_ADDRESSING_STYLE: {self.s3_addressing_style!r} is not one of "
                f"{', '.join(_ADDRESSING_STYLES)}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FetchOptions:
        """SLUICE_CA_BUNDLE (else SSL_CERT_FILE), SLUICE_BEARER_TOKEN_FILE,
        SLUICE_FETCH_TIMEOUT_SECONDS, SLUICE_FETCH_ATTEMPTS, SLUICE_FETCH_BACKOFF_SECONDS,
        SLUICE_S3_ADDRESSING_STYLE."""
        ca_bundle = env.get("SLUICE_CA_BUNDLE") or env.get("SSL_CERT_FILE")
        token_file = env.get("SLUICE_BEARER_TOKEN_FILE")
        defaults = cls()
        read_timeout = _number(
            env, "SLUICE_FETCH_TIMEOUT_SECONDS", defaults.read_timeout, minimum=0.001
        )
        retry = RetryPolicy(
            attempts=int(_number(env, "SLUICE_FETCH_ATTEMPTS", defaults.retry.attempts, minimum=1)),
            base_delay=_number(env, "SLUICE_FETCH_BACKOFF_SECONDS", defaults.retry.base_delay),
        )
        return cls(
            ca_bundle=Path(ca_bundle) if ca_bundle else None,
            bearer_token_file=Path(token_file) if token_file else None,
            connect_timeout=min(defaults.connect_timeout, read_timeout),
            read_timeout=read_timeout,
            retry=retry,
            s3_addressing_style=env.get("SLUICE_S3_ADDRESSING_STYLE") or None,
        )

    def bearer_token(self) -> str | None:
        """The token, read from its file on each fetch so a rotated token is picked up."""
        if self.bearer_token_file is None:
            return None
        try:
            token = self.bearer_token_file.read_text().strip()
        except OSError as exc:
            raise ModelLoadError(
                f"bearer token file {self.bearer_token_file}: cannot be read ({exc.strerror})"
            ) from None
        if not token:
            raise ModelLoadError(f"bearer token file {self.bearer_token_file} is empty")
        return token


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ModelLoadError(f"{name}: {raw!r} is not a number") from None
    if value < minimum:
        raise ModelLoadError(f"{name}: must be at least {minimum:g}, got {raw!r}")
    return value
