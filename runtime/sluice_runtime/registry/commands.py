"""`sluice-runtime fetch` and `sluice-runtime resolve`: the registry on the command line.

`fetch` is the init container's whole job: fetch, verify, place `DEST/model.onnx`,
print the digest. `resolve` is for GitOps tooling: it turns a moving reference
(an MLflow alias, a bare S3 key, a URL) into the pinned URI and digest to commit.
Each flag also reads SLUICE_<FLAG> (the flag wins), as `serve` does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from sluice_runtime.errors import ModelLoadError
from sluice_runtime.settings import RuntimeSettings, env_name

# Download settings shared by both commands; each maps to the SLUICE_* variable
# `FetchOptions.from_env` reads, so flags and environment share one parser.
_OPTION_FLAGS = {
    "ca_bundle": "CA certificates to trust for https (default: SSL_CERT_FILE, else certifi)",
    "bearer_token_file": "file holding a bearer token sent to https model URLs",
    "fetch_timeout_seconds": "longest wait for a connection or for more bytes (default 60)",
    "fetch_attempts": "tries per download before giving up (default 5)",
    "fetch_backoff_seconds": "first retry's backoff ceiling; doubles per retry (default 0.5)",
    "s3_addressing_style": "auto (boto3 picks: path-style for a custom endpoint), path or virtual",
}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `fetch` and `resolve` to the `sluice-runtime` command line."""
    fetch = commands.add_parser("fetch", help="fetch and verify a model into DEST/model.onnx")
    fetch.add_argument("--model-uri", help="the pinned model URI; env SLUICE_MODEL_URI")
    fetch.add_argument("--digest", help="sha256:<hex> the file must hash to; env SLUICE_DIGEST")
    fetch.add_argument("--dest", type=Path, required=True, help="folder to write model.onnx to")
    _add_shared(fetch)

    resolve = commands.add_parser(
        "resolve", help="print the pinned URI and digest of a model reference"
    )
    resolve.add_argument("uri", help="e.g. mlflow://fraud@champion, s3://bucket/key, https://...")
    resolve.add_argument("--output", choices=("text", "json"), default="text")
    _add_shared(resolve)


def _add_shared(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="download cache (default ~/.cache/sluice/models); env SLUICE_CACHE_DIR",
    )
    for field, text in _OPTION_FLAGS.items():
        parser.add_argument(
            "--" + field.replace("_", "-"), dest=field, help=f"{text}; env {env_name(field)}"
        )


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run `fetch` or `resolve`; errors go to stderr and exit 1, results to stdout."""
    from sluice_runtime.registry.base import fetch_model, resolve_model
    from sluice_runtime.registry.options import FetchOptions

    merged = dict(env)
    for field in _OPTION_FLAGS:
        value = getattr(args, field)
        if value is not None:
            merged[env_name(field)] = value
    default_cache = RuntimeSettings.model_fields["cache_dir"].default
    cache_dir = Path(args.cache_dir or env.get("SLUICE_CACHE_DIR") or default_cache).expanduser()
    try:
        options = FetchOptions.from_env(merged)
        if args.command == "resolve":
            resolved = resolve_model(args.uri, cache_dir, options)
            print(_render(resolved.uri, resolved.digest, args.output))
            return 0
        uri = args.model_uri or env.get("SLUICE_MODEL_URI")
        if not uri:
            raise ModelLoadError("--model-uri (or SLUICE_MODEL_URI) is required")
        digest = args.digest or env.get("SLUICE_DIGEST")
        fetched = fetch_model(uri, digest, cache_dir, None, options)
        place(fetched.path, args.dest, cache_dir)
        print(fetched.digest)
        return 0
    except ModelLoadError as error:
        print(f"sluice-runtime {args.command}: {error.message}", file=sys.stderr)
        return 1
    except OSError as error:  # a full disk or an unwritable cache or destination
        print(f"sluice-runtime {args.command}: {error}", file=sys.stderr)
        return 1


def place(source: Path, dest: Path, cache_dir: Path) -> Path:
    """Publish `source` as `dest/model.onnx` atomically.

    A cache entry is hard-linked when it can be (same file system: no second
    copy of a large model); anything else is copied, so a later change to the
    original cannot reach the server.
    """
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "model.onnx"
    partial = dest / ".model.onnx.part"
    partial.unlink(missing_ok=True)
    in_cache = source.resolve().is_relative_to(cache_dir.resolve())
    if not (in_cache and _linked(source, partial)):
        shutil.copyfile(source, partial)
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
    partial.replace(target)
    return target


def _linked(source: Path, link: Path) -> bool:
    try:
        os.link(source, link)
    except OSError:
        return False
    return True


def _render(uri: str, digest: str, output: str) -> str:
    if output == "json":
        return json.dumps({"uri": uri, "digest": digest})
    return f"uri: {uri}\ndigest: {digest}"
