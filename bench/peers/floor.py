"""The floor: raw onnxruntime in-process, no server, on the server's core.

    taskset -c 0 python floor.py MODEL.onnx --batch 1 --seconds 2 [--device cuda]
Runs the model back to back on one seeded batch for `seconds` (after a short warm-up) and
prints one JSON line: runs, wall seconds, CPU seconds and the p50/p99 of one run. Uses the
same session options as every server here (session.py).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from session import open_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    session = open_session(args.model, args.device)
    spec = session.get_inputs()[0]
    batch = np.random.default_rng(0).standard_normal((args.batch, spec.shape[1]))
    feed = {spec.name: batch.astype(np.float32)}
    for _ in range(50):
        session.run(None, feed)
    times: list[float] = []
    cpu_start, start = time.process_time(), time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        begin = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - begin)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    p50, p99 = np.percentile(times, [50, 99])
    doc = {"runs": len(times), "seconds": wall, "cpu_seconds": cpu, "p50_s": p50, "p99_s": p99}
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
