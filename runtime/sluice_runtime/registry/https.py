"""https:// (and http://) — a model file on a web server, pinned only by its digest."""

from __future__ import annotations

from sluice_runtime.registry.base import FetchedModel
from sluice_runtime.registry.httpclient import BearerToken, HttpSource, make_client
from sluice_runtime.registry.transfer import FetchContext, fetch_to_cache
from sluice_runtime.registry.uris import redact, require_http_digest


class HttpsRegistry:
    """Streams the file into the cache; the URL alone is never trusted to stay the same."""

    def fetch(self, uri: str, digest: str | None, ctx: FetchContext) -> FetchedModel:
        require_http_digest(uri, digest)
        return self._fetch(uri, digest, ctx)

    def resolve(self, uri: str, ctx: FetchContext) -> FetchedModel:
        """Download once to learn the digest that pins what the URL serves today."""
        return self._fetch(uri, None, ctx)

    def _fetch(self, uri: str, digest: str | None, ctx: FetchContext) -> FetchedModel:
        scheme = uri.split(":", 1)[0]
        token = ctx.options.bearer_token()
        auth = BearerToken(token) if token else None
        hints = {
            401: "the server wants credentials"
            + (
                "; the bearer token was refused"
                if token
                else "; none was sent (--bearer-token-file / SLUICE_BEARER_TOKEN_FILE)"
            ),
            403: "the credentials given do not grant access to this file",
            404: "no file at this URL",
        }
        with make_client(ctx.options, auth=auth) as client:
            cached = fetch_to_cache(
                ctx,
                scheme,
                key=redact(uri),
                make_source=lambda: HttpSource(client, uri, hints),
                expected=digest,
                reference=None,
            )
        return FetchedModel(uri=uri, path=cached.path, digest=cached.digest)
