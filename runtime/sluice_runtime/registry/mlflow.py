"""mlflow:// and models:/ — a version of a model in the MLflow Model Registry.

Talks to the registry's REST API at MLFLOW_TRACKING_URI over httpx (the
`mlflow` package is far too heavy for a serving image). A version number is a
pin; aliases, stages and `latest` move, so `fetch` refuses them and `resolve`
turns them into the version they point at today.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from sluice_runtime.errors import ModelLoadError
from sluice_runtime.registry.base import FetchedModel
from sluice_runtime.registry.httpclient import (
    BearerToken,
    check_status,
    is_transient_status,
    make_client,
    translated_errors,
)
from sluice_runtime.registry.mlflow_artifacts import (
    ArtifactStore,
    onnx_file_from_mlmodel,
    open_store,
    single_onnx,
)
from sluice_runtime.registry.retry import run_with_retries
from sluice_runtime.registry.transfer import FetchContext, Source, fetch_to_cache
from sluice_runtime.registry.uris import (
    MlflowModelRef,
    parse_mlflow,
    redact,
    require_mlflow_pin,
)

T = TypeVar("T")
_API = "/api/2.0/mlflow"
_AUTH_HINTS = {
    401: "set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD",
    403: "the MLflow credentials do not grant access to this model",
}
_MISSING = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})


class MlflowRegistry:
    """Resolves a registered model version to its ONNX file and fetches it into the cache."""

    def __init__(self, env: Mapping[str, str]) -> None:
        tracking_uri = env.get("MLFLOW_TRACKING_URI", "").rstrip("/")
        if not tracking_uri.startswith(("http://", "https://")):
            got = f"got {redact(tracking_uri)!r}" if tracking_uri else "it is not set"
            raise ModelLoadError(
                "MLFLOW_TRACKING_URI must be the http(s) address of the MLflow tracking server; "
                + got
            )
        self._tracking_uri = tracking_uri
        self._token = env.get("MLFLOW_TRACKING_TOKEN")
        self._basic = (env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD"))
        self._server_ca = env.get("MLFLOW_TRACKING_SERVER_CERT_PATH")

    def fetch(self, uri: str, digest: str | None, ctx: FetchContext) -> FetchedModel:
        ref = parse_mlflow(uri)
        require_mlflow_pin(ref, uri)
        return self._fetch(ref, digest, ctx)

    def resolve(self, uri: str, ctx: FetchContext) -> FetchedModel:
        ref = parse_mlflow(uri)
        if not ref.pinned:
            with self._client(ctx) as client:
                version = self._version_of(client, ctx, ref)
            ref = MlflowModelRef(name=ref.name, version=version)
        return self._fetch(ref, None, ctx)

    def _fetch(self, ref: MlflowModelRef, digest: str | None, ctx: FetchContext) -> FetchedModel:
        reference = f"mlflow|{redact(self._tracking_uri)}|{ref.name}|{ref.version}"
        with self._client(ctx) as client:
            cached = fetch_to_cache(
                ctx,
                "mlflow",
                key=reference,
                make_source=lambda: self._locate(client, ctx, ref),
                expected=digest,
                reference=reference,
            )
        return FetchedModel(uri=ref.uri(), path=cached.path, digest=cached.digest)

    def _client(self, ctx: FetchContext) -> httpx.Client:
        auth: httpx.Auth | None = None
        if self._token:
            auth = BearerToken(self._token)
        elif self._basic[0] and self._basic[1]:
            auth = httpx.BasicAuth(self._basic[0], self._basic[1])
        ca = Path(self._server_ca) if self._server_ca else None
        return make_client(ctx.options, auth=auth, ca_bundle=ca)

    def _version_of(self, client: httpx.Client, ctx: FetchContext, ref: MlflowModelRef) -> str:
        """The version number an alias, stage or `latest` points at now."""
        if ref.alias is not None:
            answer = self._get(
                client, ctx, ref, "/registered-models/alias", {"name": ref.name, "alias": ref.alias}
            )
            return str(answer["model_version"]["version"])
        params: dict[str, str] = {"name": ref.name}
        moving = str(ref.moving)
        if moving.lower() != "latest":
            params["stages"] = moving.capitalize()
        answer = self._get(client, ctx, ref, "/registered-models/get-latest-versions", params)
        versions = [int(v["version"]) for v in answer.get("model_versions", [])]
        if not versions:
            raise ModelLoadError(f"{ref.uri()}: no version of {ref.name!r} is in {moving!r}")
        return str(max(versions))

    def _locate(self, client: httpx.Client, ctx: FetchContext, ref: MlflowModelRef) -> Source:
        """Find the version's ONNX file: check the version is READY, then read its MLmodel."""
        params = {"name": ref.name, "version": str(ref.version)}
        version = self._get(client, ctx, ref, "/model-versions/get", params)["model_version"]
        status = version.get("status", "READY")
        if status != "READY":
            raise ModelLoadError(f"{ref.uri()}: model version status is {status}, not READY")
        artifact_uri = self._get(client, ctx, ref, "/model-versions/get-download-uri", params)[
            "artifact_uri"
        ]
        store = open_store(artifact_uri, self._tracking_uri, client, ctx)
        name = self._retrying(ctx, ref, lambda: _model_file(store, ref))
        return store.source(name)

    def _get(
        self,
        client: httpx.Client,
        ctx: FetchContext,
        ref: MlflowModelRef,
        path: str,
        params: Mapping[str, str],
    ) -> dict[str, Any]:
        url = f"{self._tracking_uri}{_API}{path}"

        def call() -> dict[str, Any]:
            with translated_errors(redact(url)):
                response = client.get(url, params=params)
            if response.status_code >= 400:
                _raise_api_error(response, ref, redact(self._tracking_uri))
            answer: dict[str, Any] = response.json()
            return answer

        return self._retrying(ctx, ref, call)

    def _retrying(self, ctx: FetchContext, ref: MlflowModelRef, call: Callable[[], T]) -> T:
        return run_with_retries(
            lambda _: call(),
            ctx.options.retry,
            f"MLflow registry {redact(self._tracking_uri)} ({ref.uri()})",
            sleep=ctx.sleep,
            random=ctx.random,
        )


def _model_file(store: ArtifactStore, ref: MlflowModelRef) -> str:
    """The ONNX flavor's file from MLmodel, else the folder's only .onnx file."""
    mlmodel = store.read_small("MLmodel")
    if mlmodel is not None:
        named = onnx_file_from_mlmodel(mlmodel.decode("utf-8", errors="replace"))
        if named is not None:
            return named
    return single_onnx(store.names(), f"{ref.uri()} artifacts")


def _raise_api_error(response: httpx.Response, ref: MlflowModelRef, tracking: str) -> None:
    """MLflow's JSON errors, made specific: what is missing, or which credential to set."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("error_code", ""))
    message = str(body.get("message", "")) or response.reason_phrase
    missing = code in _MISSING or response.status_code == 404 or "not found" in message.lower()
    if missing and response.status_code < 500:
        raise ModelLoadError(
            f"{ref.uri()}: not found in the MLflow registry at {tracking}: {message}"
        )
    if response.status_code in _AUTH_HINTS or is_transient_status(response.status_code):
        check_status(response, f"{ref.uri()} ({tracking})", _AUTH_HINTS)
    raise ModelLoadError(f"{ref.uri()}: MLflow answered {code or response.status_code}: {message}")
