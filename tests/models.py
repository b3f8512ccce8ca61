"""ONNX models the tests and the benchmark build with the `onnx` helper API.

Each builder writes one `.onnx` file and returns its path. Weights come from a
seeded generator, so two builds with the same arguments are byte-identical and
a digest computed once stays valid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Old enough for every onnxruntime the project pins, new enough for every op used here.
OPSET = 17
IR_VERSION = 8

# Protocol datatype -> ONNX element type, for the all-datatypes identity model.
ONNX_TYPES: dict[str, int] = {
    "BOOL": TensorProto.BOOL,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="sluice-tests",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def mlp(path: Path, inputs: int = 64, hidden: int = 256, outputs: int = 10, seed: int = 0) -> Path:
    """A two-layer perceptron with a dynamic batch dimension: the benchmark model.

    input "input" FP32 [batch, inputs] -> Gemm -> Relu -> Gemm -> "output" FP32 [batch, outputs].
    """
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((inputs, hidden)) / np.sqrt(inputs)).astype(np.float32)
    b1 = (rng.standard_normal(hidden) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((hidden, outputs)) / np.sqrt(hidden)).astype(np.float32)
    b2 = (rng.standard_normal(outputs) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["a"]),
            helper.make_node("Gemm", ["a", "w2", "b2"], ["output"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", inputs])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", outputs])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    return _save(graph, path)


def multi_io(path: Path) -> Path:
    """Several inputs and outputs of different datatypes, dynamic batch.

    inputs:  "x" FP32 [batch, 4], "offset" INT64 [batch, 4], "scale" FP16 [batch, 1]
    outputs: "sum" FP64 [batch, 4] = (x + offset) * scale,
             "positive" BOOL [batch, 4] = sum > 0,
             "argmax" INT64 [batch] = index of the largest sum in each row,
             "count" INT32 [batch, 1] = how many entries of the row are positive.
    """
    batch = "batch"
    nodes = [
        helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["offset"], ["offset64"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["scale"], ["scale64"], to=TensorProto.DOUBLE),
        helper.make_node("Add", ["x64", "offset64"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "scale64"], ["sum"]),
        helper.make_node("Greater", ["sum", "zero"], ["positive"]),
        helper.make_node("ArgMax", ["sum"], ["argmax"], axis=1, keepdims=0),
        helper.make_node("Cast", ["positive"], ["positive32"], to=TensorProto.INT32),
        helper.make_node("ReduceSum", ["positive32", "axes"], ["count"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "multi_io",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4]),
            helper.make_tensor_value_info("offset", TensorProto.INT64, [batch, 4]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT16, [batch, 1]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.DOUBLE, [batch, 4]),
            helper.make_tensor_value_info("positive", TensorProto.BOOL, [batch, 4]),
            helper.make_tensor_value_info("argmax", TensorProto.INT64, [batch]),
            helper.make_tensor_value_info("count", TensorProto.INT32, [batch, 1]),
        ],
        initializer=[
            numpy_helper.from_array(np.array(0.0, dtype=np.float64), "zero"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
        ],
    )
    return _save(graph, path)


def identity_all_types(path: Path) -> Path:
    """One Identity per protocol datatype: "in_<TYPE>" [batch, 3] -> "out_<TYPE>" [batch, 3].

    Lets the transports round-trip every datatype (BYTES included) through a real model.
    """
    nodes = [helper.make_node("Identity", [f"in_{name}"], [f"out_{name}"]) for name in ONNX_TYPES]
    graph = helper.make_graph(
        nodes,
        "identity_all_types",
        [
            helper.make_tensor_value_info(f"in_{name}", elem, ["batch", 3])
            for name, elem in ONNX_TYPES.items()
        ],
        [
            helper.make_tensor_value_info(f"out_{name}", elem, ["batch", 3])
            for name, elem in ONNX_TYPES.items()
        ],
    )
    return _save(graph, path)


def echo(path: Path, width: int = 4) -> Path:
    """An Identity, "x" FP32 [batch, width] -> "y": answers as large as the requests."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "echo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
    )
    return _save(graph, path)


def fixed_batch(path: Path) -> Path:
    """No dynamic dimension: "x" FP32 [2, 3] -> "y" FP32 [2, 3] = 2 * x + 1."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "two"], ["doubled"]),
            helper.make_node("Add", ["doubled", "one"], ["y"]),
        ],
        "fixed_batch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializer=[
            numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
            numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        ],
    )
    return _save(graph, path)


def slow(path: Path, size: int = 384, rounds: int = 40, seed: int = 0) -> Path:
    """A dynamic-batch model that takes a while per run, to hold requests in flight.

    "x" FP32 [batch, 4] -> "y" FP32 [batch, 4] = x + 0 * (a tanh-damped chain of `rounds`
    [size, size] matrix products). The chain does not depend on the input, so the answer is
    simply x and still exact, while each run costs about rounds * 2 * size^3 flops.
    """
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32)
    loop_body = helper.make_graph(
        [
            helper.make_node("MatMul", ["state_in", "weight"], ["product"]),
            helper.make_node("Tanh", ["product"], ["state_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "chain",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, [size, size]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [size, size]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Loop", ["rounds", "", "weight"], ["chained"], body=loop_body),
            helper.make_node("ReduceSum", ["chained"], ["total"], keepdims=0),
            helper.make_node("Mul", ["total", "zero"], ["nothing"]),
            helper.make_node("Add", ["x", "nothing"], ["y"]),
        ],
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(np.array(rounds, dtype=np.int64), "rounds"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ],
    )
    return _save(graph, path)


def broken(path: Path) -> Path:
    """A file named .onnx that is not a model: ONNX Runtime refuses to load it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an onnx model\n")
    return path
