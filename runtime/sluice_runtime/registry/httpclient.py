"""The HTTP side shared by the https and mlflow registries.

One place decides which HTTP failures are worth a retry, how TLS trust is set
up, and how a streamed response becomes a `Body`, so both registries behave
the same and neither ever prints a token or a presigned URL's signature.
"""

from __future__ import annotations

import email.utils
import logging
import re
import ssl
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import certifi
import httpx

from sluice_runtime import __version__
from sluice_runtime.errors import ModelLoadError
from sluice_runtime.registry.options import FetchOptions
from sluice_runtime.registry.retry import TransientError
from sluice_runtime.registry.transfer import Body
from sluice_runtime.registry.uris import redact

_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class BearerToken(httpx.Auth):
    """Sends `Authorization: Bearer`; httpx drops it on redirects to another origin."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken(***)"


class _RedactUrls(logging.Filter):
    """httpx logs each request URL at INFO; a presigned URL's query is a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def make_client(
    options: FetchOptions, auth: httpx.Auth | None = None, ca_bundle: Path | None = None
) -> httpx.Client:
    """A client that verifies TLS against the configured bundle and follows redirects."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(existing, _RedactUrls) for existing in logger.filters):
        logger.addFilter(_RedactUrls())
    bundle = ca_bundle or options.ca_bundle
    try:
        context = ssl.create_default_context(cafile=str(bundle) if bundle else certifi.where())
    except (OSError, ssl.SSLError) as exc:
        raise ModelLoadError(f"CA bundle {bundle}: cannot be loaded ({exc})") from None
    return httpx.Client(
        verify=context,
        auth=auth,
        follow_redirects=True,
        max_redirects=10,
        timeout=httpx.Timeout(options.read_timeout, connect=options.connect_timeout),
        headers={"User-Agent": f"sluice-runtime/{__version__}"},
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if it has one."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_transient_status(status: int) -> bool:
    """A status a later try may not get: overload, throttling, a gateway or server fault."""
    return status in _TRANSIENT_STATUS or status >= 500


def check_status(response: httpx.Response, display: str, hints: Mapping[int, str]) -> None:
    """Raise for a failed response: TransientError for what a retry may fix, else ModelLoadError.

    `hints` says, per status, what was missing (a token, a version) in the caller's terms.
    """
    status = response.status_code
    if status < 400:
        return
    reason = f"{status} {response.reason_phrase}".strip()
    if is_transient_status(status):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise TransientError(f"{display}: {reason}", retry_after=retry_after)
    hint = hints.get(status)
    raise ModelLoadError(f"{display}: {reason}" + (f": {hint}" if hint else ""))


@contextmanager
def translated_errors(display: str) -> Iterator[None]:
    """Turn httpx's exceptions into TransientError (network, timeouts) or ModelLoadError."""
    try:
        yield
    except httpx.ConnectError as exc:
        if _tls_verification_failed(exc):
            raise ModelLoadError(
                f"{display}: TLS certificate verification failed ({exc}); trust the server's "
                "CA with --ca-bundle or SLUICE_CA_BUNDLE"
            ) from None
        raise TransientError(f"{display}: cannot connect ({exc})") from None
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise TransientError(f"{display}: {type(exc).__name__} ({exc})") from None
    except httpx.TooManyRedirects:
        raise ModelLoadError(f"{display}: too many redirects") from None
    except httpx.HTTPError as exc:
        raise ModelLoadError(f"{display}: {type(exc).__name__} ({exc})") from None


def _tls_verification_failed(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


class HttpSource:
    """A file served over HTTP(S), resumed with a Range request after a dropped connection."""

    def __init__(self, client: httpx.Client, url: str, hints: Mapping[int, str]) -> None:
        self._client = client
        self._url = url
        self._hints = hints

    @property
    def display(self) -> str:
        return redact(self._url)

    @contextmanager
    def open(self, offset: int) -> Iterator[Body]:
        # identity: a transparently decompressed body would not hash to the file's digest.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        with (
            translated_errors(self.display),
            self._client.stream("GET", self._url, headers=headers) as response,
        ):
            check_status(response, self.display, self._hints)
            start = _body_start(response, offset)
            length = response.headers.get("Content-Length")
            # Unchunked: bytes received before a dropped connection reach the file.
            yield Body(
                offset=start,
                length=int(length) if length and length.isdigit() else None,
                chunks=response.iter_bytes(),
            )


def _body_start(response: httpx.Response, offset: int) -> int:
    """Where the body starts: `offset` for a matching 206, else 0 (the whole object)."""
    if response.status_code != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.match(content_range)
    if match is None or int(match.group(1)) != offset:
        raise TransientError(f"unexpected Content-Range {content_range!r} for offset {offset}")
    return offset
