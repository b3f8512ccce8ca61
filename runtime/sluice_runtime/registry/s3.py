"""s3:// — an object in any S3-compatible store, pinned by object version or digest.

boto3 does the parts that are easy to get subtly wrong: SigV4 signing and the
standard credential chain (AWS_* variables, ~/.aws files and profiles, web
identity tokens, instance and container roles) and endpoint/region lookup
(AWS_ENDPOINT_URL[_S3], AWS_REGION). Its own retries are off: the shared loop
in `retry.py` retries everything, including a body cut off halfway, the same
way for every scheme.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions as boto_errors
from botocore.config import Config

from sluice_runtime.errors import ModelLoadError
from sluice_runtime.registry.base import FetchedModel
from sluice_runtime.registry.options import FetchOptions
from sluice_runtime.registry.retry import TransientError
from sluice_runtime.registry.transfer import Body, FetchContext, fetch_to_cache
from sluice_runtime.registry.uris import S3Location, parse_s3, redact, require_s3_pin

_CHUNK = 1 << 20
_NOT_FOUND = {
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "no object with this key",
    "NoSuchVersion": "the object has no such version",
    "NotFound": "no object with this key",
    "404": "no object with this key",
}
_DENIED = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AllAccessDisabled",
    }
)
_THROTTLED = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "XMinioServerNotInitialized",
    }
)
_NETWORK = (
    boto_errors.ConnectionError,
    boto_errors.HTTPClientError,
    boto_errors.ResponseStreamingError,
    boto_errors.IncompleteReadError,
    boto_errors.FlexibleChecksumError,
)
_NO_CREDENTIALS = (
    "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
    "with ~/.aws/credentials, or run with a web identity or instance role"
)


def make_s3_client(options: FetchOptions) -> Any:
    """An S3 client configured from the environment; botocore's retries switched off."""
    s3_config = {"addressing_style": options.s3_addressing_style}
    config = Config(
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        retries={"total_max_attempts": 1},
        s3=s3_config if options.s3_addressing_style else None,
        user_agent_extra="sluice-runtime",
    )
    verify = str(options.ca_bundle) if options.ca_bundle else None
    try:
        return boto3.session.Session().client("s3", config=config, verify=verify)
    except boto_errors.BotoCoreError as exc:
        raise ModelLoadError(f"S3 client configuration: {exc}") from None


def classify_client_error(display: str, code: str, status: int, message: str) -> Exception:
    """The exception for an S3 error response: a retry, or a clear final failure."""
    if code in _NOT_FOUND:
        return ModelLoadError(f"{display}: {code}: {_NOT_FOUND[code]}")
    if code in _DENIED:
        return ModelLoadError(
            f"{display}: {code}: access denied; check the credentials and the bucket policy"
        )
    if code in _THROTTLED or status == 429 or status >= 500:
        return TransientError(f"{display}: {code} ({status})")
    return ModelLoadError(f"{display}: {code} ({status}): {message}")


@contextmanager
def translated_errors(display: str) -> Iterator[None]:
    """Turn botocore's exceptions into TransientError or ModelLoadError, credentials left out."""
    try:
        yield
    except (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError):
        raise ModelLoadError(f"{display}: {_NO_CREDENTIALS}") from None
    except boto_errors.ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        raise classify_client_error(
            display, str(error.get("Code", status)), int(status), str(error.get("Message", ""))
        ) from None
    except _NETWORK as exc:
        raise TransientError(f"{display}: {type(exc).__name__} ({exc})") from None
    except boto_errors.BotoCoreError as exc:
        raise ModelLoadError(f"{display}: {type(exc).__name__} ({exc})") from None


class S3Source:
    """One object; every try after the first asks for the same version it first saw."""

    def __init__(self, client: Any, location: S3Location) -> None:
        self._client = client
        self._location = location
        self.version_id = location.version_id

    @property
    def display(self) -> str:
        return redact(self._location.uri())

    @contextmanager
    def open(self, offset: int) -> Iterator[Body]:
        params = {"Bucket": self._location.bucket, "Key": self._location.key}
        if self.version_id is not None:
            params["VersionId"] = self.version_id
        if offset:
            params["Range"] = f"bytes={offset}-"
        with translated_errors(self.display):
            response = self._client.get_object(**params)
            stream = response["Body"]
            try:
                seen = response.get("VersionId")
                if self.version_id is None and seen not in (None, "null"):
                    self.version_id = seen
                start = offset if offset and response.get("ContentRange") else 0
                yield Body(start, response.get("ContentLength"), stream.iter_chunks(_CHUNK))
            finally:
                stream.close()


class S3Registry:
    """Fetches one object version into the cache."""

    def fetch(self, uri: str, digest: str | None, ctx: FetchContext) -> FetchedModel:
        location = parse_s3(uri)
        require_s3_pin(location, uri, digest)
        return self._fetch(location, digest, ctx)

    def resolve(self, uri: str, ctx: FetchContext) -> FetchedModel:
        """Fetch the current version; the result's URI names that version when the bucket
        is versioned (otherwise only the digest pins it)."""
        return self._fetch(parse_s3(uri), None, ctx)

    def _fetch(self, location: S3Location, digest: str | None, ctx: FetchContext) -> FetchedModel:
        client = make_s3_client(ctx.options)
        source = S3Source(client, location)
        endpoint = client.meta.endpoint_url
        key = f"s3|{endpoint}|{location.uri()}"
        cached = fetch_to_cache(
            ctx,
            "s3",
            key=key,
            make_source=lambda: source,
            expected=digest,
            reference=key if location.version_id is not None else None,
        )
        pinned = S3Location(location.bucket, location.key, source.version_id)
        return FetchedModel(uri=pinned.uri(), path=cached.path, digest=cached.digest)
