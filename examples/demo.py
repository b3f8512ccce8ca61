"""`make demo`: train a real classifier, serve it with sluice-runtime, ask it over REST and gRPC.

Steps, each printed as it happens:
1. train a scikit-learn logistic regression on the iris data set that ships with scikit-learn;
2. convert it to ONNX with skl2onnx and place it in a local registry folder
   `<registry>/iris/1/model.onnx`, pinned by its sha256 digest;
3. start `python -m sluice_runtime serve` on free local ports and wait for readiness;
4. send predictions over REST (httpx, JSON tensors) and gRPC (tritonclient);
5. print a few of the runtime's Prometheus metrics, then stop it with SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import tritonclient.grpc as grpcclient
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sluice_runtime.digest import sha256_file

MODEL_NAME = "iris"
MODEL_VERSION = "1"
METRICS_SHOWN = (
    "sluice_requests_total",
    "sluice_batch_size_count",
    "sluice_model_load_seconds",
    "sluice_model_warmup_seconds",
    "sluice_model_output_count",
)

Array = np.ndarray[Any, Any]


def train(registry: Path) -> tuple[Path, Array, Array, list[str]]:
    """Train, convert, place the model; return its folder and a few held-out samples."""
    iris = load_iris()
    features = iris.data.astype(np.float32)
    train_x, test_x, train_y, test_y = train_test_split(
        features, iris.target, test_size=0.2, random_state=0, stratify=iris.target
    )
    classifier = LogisticRegression(max_iter=500).fit(train_x, train_y)
    accuracy = classifier.score(test_x, test_y)
    print(f"trained logistic regression on iris: held-out accuracy {accuracy:.2f}")
    onnx_model = to_onnx(
        classifier,
        train_x[:1],
        options={id(classifier): {"zipmap": False}},
        target_opset=17,
    )
    folder = registry / MODEL_NAME / MODEL_VERSION
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(onnx_model.SerializeToString())
    return folder, test_x[:5], test_y[:5], [str(name) for name in iris.target_names]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the runtime exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the runtime was not ready within {timeout:.0f}s")


def predict_rest(url: str, samples: Array) -> tuple[list[int], Array]:
    body = {
        "inputs": [
            {
                "name": "X",
                "shape": list(samples.shape),
                "datatype": "FP32",
                "data": samples.ravel().tolist(),
            }
        ]
    }
    answer = httpx.post(f"{url}/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer", json=body)
    answer.raise_for_status()
    outputs = {output["name"]: output for output in answer.json()["outputs"]}
    labels = [int(label) for label in outputs["label"]["data"]]
    probabilities = np.array(outputs["probabilities"]["data"]).reshape(
        outputs["probabilities"]["shape"]
    )
    return labels, probabilities


def predict_grpc(address: str, samples: Array) -> list[int]:
    with grpcclient.InferenceServerClient(address) as client:
        tensor = grpcclient.InferInput("X", list(samples.shape), "FP32")
        tensor.set_data_from_numpy(samples)
        result = client.infer(MODEL_NAME, [tensor], request_id="demo-grpc")
        labels = result.as_numpy("label")
        assert labels is not None
        return [int(label) for label in labels]


def show_metrics(url: str) -> None:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(METRICS_SHOWN):
            print("  " + line)


def run(registry: Path) -> int:
    folder, samples, truth, names = train(registry)
    digest = sha256_file(folder / "model.onnx")
    print(f"registry: {folder}/model.onnx  {digest}")
    http_port, grpc_port = free_port(), free_port()
    url, address = f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}"
    command = [
        sys.executable, "-m", "sluice_runtime", "serve",
        "--model-name", MODEL_NAME, "--model-version", MODEL_VERSION,
        "--model-uri", folder.as_uri(), "--digest", digest,
        "--host", "127.0.0.1", "--http-port", str(http_port), "--grpc-port", str(grpc_port),
        "--max-batch-size", "16", "--warmup-requests", "2", "--drain-seconds", "10",
    ]  # fmt: skip
    print("starting: " + " ".join(command[1:]))
    process = subprocess.Popen(command)
    try:
        wait_ready(process, url)
        print(f"ready: REST on {url}, gRPC on {address}")
        labels, probabilities = predict_rest(url, samples)
        print("REST predictions (JSON tensors):")
        for sample, label, scores, true in zip(samples, labels, probabilities, truth, strict=True):
            features = ", ".join(f"{value:.1f}" for value in sample)
            verdict = f"{names[label]:<10} p={scores.max():.2f} (true: {names[true]})"
            print(f"  [{features}] -> {verdict}")
        grpc_labels = predict_grpc(address, samples)
        print(f"gRPC predictions: {', '.join(names[label] for label in grpc_labels)}")
        if grpc_labels != labels:
            raise SystemExit("REST and gRPC disagree")
        print("metrics:")
        show_metrics(url)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    print(f"runtime stopped with exit code {code}")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__)
    parser.add_argument("--registry", type=Path, help="registry folder (default: a temp dir)")
    args = parser.parse_args()
    if args.registry is not None:
        return run(args.registry)
    with tempfile.TemporaryDirectory(prefix="sluice-demo-") as tmp:
        return run(Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
