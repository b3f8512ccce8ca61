"""`sluice render -f FILE`: every example renders; a bad manifest names its field."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from sluice_operator import render_cli
from sluice_operator.naming import ANNOTATION_APPLIED_HASH

from tests.data.isvc_cases import EXAMPLES


def _render(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = render_cli.main(["render", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders(capsys: pytest.CaptureFixture[str], example: Path) -> None:
    code, out, err = _render(capsys, "-f", str(example))
    assert code == 0, err
    objects = list(yaml.safe_load_all(out))
    kinds = [o["kind"] for o in objects]
    assert kinds.count("Deployment") >= 1
    assert "Service" in kinds
    assert all(ANNOTATION_APPLIED_HASH not in o["metadata"].get("annotations", {}) for o in objects)
    assert "&id" not in out


def test_canary_example_renders_router_and_both_revisions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = next(p for p in EXAMPLES if p.name == "canary.yaml")
    _, out, _ = _render(capsys, "-f", str(example), "--namespace", "risk")
    objects = list(yaml.safe_load_all(out))
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("ConfigMap", "fraud-router") in names
    assert ("Service", "fraud") in names
    assert all(o["metadata"]["namespace"] == "risk" for o in objects)
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]["nginx.conf"]
    assert "split_clients" in config
    assert ".risk.svc.cluster.local:8080" in config


def test_stdin_and_images(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    example = next(p for p in EXAMPLES if p.name == "basic.yaml")
    monkeypatch.setattr("sys.stdin", io.StringIO(example.read_text()))
    code, out, _ = _render(capsys, "-f", "-", "--runtime-image", "reg.local/rt:9")
    assert code == 0
    deployment = next(o for o in yaml.safe_load_all(out) if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.local/rt:9"


def test_invalid_manifest_exits_2_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    example = next(p for p in EXAMPLES if p.name == "basic.yaml")
    document = yaml.safe_load(example.read_text())
    document["spec"]["model"]["version"] = "latest"
    bad.write_text(yaml.safe_dump(document))
    code, out, err = _render(capsys, "-f", str(bad))
    assert code == 2
    assert out == ""
    assert "spec.model.version" in err
    assert "latest" in err


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _render(capsys, "-f", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "nope.yaml" in err
