"""`sluice render -f FILE`: the objects the operator would create, as YAML, without a cluster.

A dry run for GitOps reviews: the same pure builders the operator runs, fed with no live state,
so traffic is rendered as the spec asks (the operator additionally holds traffic on the old
revisions until new ones are available). The operator's `sluice.dev/applied-hash` bookkeeping
annotation is left out so a review diff shows only real changes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import yaml

from sluice_operator import desired, spec
from sluice_operator.naming import ANNOTATION_APPLIED_HASH, Manifest
from sluice_operator.settings import Settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """`sluice render -f FILE [--namespace NS] [--runtime-image IMG] [--router-image IMG]`."""
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="sluice", description="Sluice command-line tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="print the objects an InferenceService becomes")
    render.add_argument("-f", "--filename", required=True, help="manifest file, or - for stdin")
    render.add_argument("-n", "--namespace", help="namespace when the manifest names none")
    render.add_argument("--runtime-image", default=defaults.runtime_image)
    render.add_argument("--router-image", default=defaults.router_image)
    render.add_argument("--cluster-domain", default=defaults.cluster_domain)
    return parser.parse_args(argv)


def render_documents(
    documents: Sequence[Any], settings: Settings, namespace: str | None = None
) -> list[Manifest]:
    """Every InferenceService in `documents` -> its objects; SpecError names the bad field."""
    objects: list[Manifest] = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise spec.SpecError([f"document {index}: not a mapping"])
        if namespace and not (document.get("metadata") or {}).get("namespace"):
            document = {
                **document,
                "metadata": {**document.get("metadata", {}), "namespace": namespace},
            }
        isvc = spec.parse(document)
        objects += [_without_bookkeeping(o) for o in desired.build(isvc, settings, None).objects]
    return objects


def _without_bookkeeping(obj: Manifest) -> Manifest:
    meta = obj["metadata"]
    annotations = {
        k: v for k, v in meta.get("annotations", {}).items() if k != ANNOTATION_APPLIED_HASH
    }
    meta = {k: v for k, v in meta.items() if k != "annotations"}
    if annotations:
        meta["annotations"] = annotations
    return {**obj, "metadata": meta}


def _read(filename: str, stdin: TextIO) -> Iterator[Any]:
    if filename == "-":
        yield from yaml.safe_load_all(stdin)
        return
    with open(filename, encoding="utf-8") as handle:
        yield from yaml.safe_load_all(handle)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 with YAML on stdout, or 2 with the refused fields on stderr."""
    args = parse_args(argv)
    settings = Settings(
        runtime_image=args.runtime_image,
        router_image=args.router_image,
        cluster_domain=args.cluster_domain,
    )
    try:
        documents = list(_read(args.filename, sys.stdin))
        objects = render_documents(documents, settings, args.namespace)
    except (OSError, yaml.YAMLError) as error:
        print(f"sluice render: {error}", file=sys.stderr)
        return 2
    except spec.SpecError as error:
        print("sluice render: the manifest is invalid:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    yaml.dump_all(objects, sys.stdout, Dumper=_PlainDumper, sort_keys=False)
    return 0


class _PlainDumper(yaml.SafeDumper):
    """No YAML anchors (kubectl users do not expect them), multi-line strings as `|` blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def represent_data(self, data: Any) -> yaml.Node:
        if isinstance(data, str) and "\n" in data:
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        return super().represent_data(data)
