"""`make demo` end to end: train, register, serve, predict over REST and gRPC, stop cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_demo_predicts_over_both_protocols_and_stops_cleanly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--registry", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert (tmp_path / "iris" / "1" / "model.onnx").is_file()
    rest_lines = [line for line in done.stdout.splitlines() if "(true: " in line]
    assert len(rest_lines) == 5
    # Held-out iris samples are easy: the served model gets them right.
    for line in rest_lines:
        predicted = line.split("-> ")[1].split()[0]
        assert line.endswith(f"(true: {predicted})"), line
    assert "gRPC predictions: " in done.stdout
    assert (
        'sluice_requests_total{code="200",model="iris",protocol="rest",version="1"} 1.0' in output
    )
    assert "runtime stopped with exit code 0" in done.stdout
