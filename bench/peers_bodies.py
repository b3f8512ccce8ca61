"""The bytes on the wire: request bodies the load generators replay and answers they expect.

Pure functions. One request per model is built once (a seeded batch-1 input) and written in
the three forms the benchmark sends: V2 REST JSON, V2 REST with the binary tensor extension
(JSON header + raw little-endian bytes, as tritonclient sends it) and a serialized gRPC
ModelInferRequest with `raw_input_contents`. The decoders read any server's answer back into
a numpy array, so every server is checked for the right numbers before it is measured, and
the encoders make the do-nothing server's canned answers byte-for-byte what a real one says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from sluice_runtime.grpc.generated import inference_pb2 as pb

Array = np.ndarray[Any, Any]
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"
HEADER_LENGTH = "inference-header-content-length"


@dataclass(frozen=True)
class Bodies:
    """One request in every wire form; `binary_header_length` goes in the HTTP header."""

    rest_json: bytes
    rest_binary: bytes
    binary_header_length: int
    grpc: bytes


def bench_input(columns: int, seed: int = 0) -> Array:
    """The batch-1 FP32 input every server gets: seeded, so all runs send the same numbers."""
    return np.random.default_rng(seed).standard_normal((1, columns)).astype(np.float32)


def _tensor_doc(name: str, array: Array) -> dict[str, Any]:
    return {"name": name, "shape": list(array.shape), "datatype": "FP32"}


def request_bodies(model_name: str, input_name: str, array: Array) -> Bodies:
    """The request in JSON, binary-extension and gRPC form."""
    rest_json = json.dumps(
        {"inputs": [{**_tensor_doc(input_name, array), "data": array.reshape(-1).tolist()}]}
    ).encode()
    raw = array.astype("<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {**_tensor_doc(input_name, array), "parameters": {"binary_data_size": len(raw)}}
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    request = pb.ModelInferRequest(model_name=model_name)
    tensor = request.inputs.add(name=input_name, datatype="FP32")
    tensor.shape.extend(array.shape)
    request.raw_input_contents.append(raw)
    return Bodies(
        rest_json=rest_json,
        rest_binary=header + raw,
        binary_header_length=len(header),
        grpc=bytes(request.SerializeToString()),
    )


def json_answer(model_name: str, output_name: str, array: Array) -> bytes:
    """A V2 JSON infer answer carrying `array`."""
    doc = {
        "model_name": model_name,
        "outputs": [{**_tensor_doc(output_name, array), "data": array.reshape(-1).tolist()}],
    }
    return json.dumps(doc).encode()


def binary_answer(model_name: str, output_name: str, array: Array) -> tuple[bytes, int]:
    """A V2 binary-extension answer carrying `array`, and its JSON header's length."""
    raw = array.astype("<f4").tobytes()
    header = json.dumps(
        {
            "model_name": model_name,
            "outputs": [
                {**_tensor_doc(output_name, array), "parameters": {"binary_data_size": len(raw)}}
            ],
        }
    ).encode()
    return header + raw, len(header)


def grpc_answer(model_name: str, output_name: str, array: Array) -> bytes:
    """A serialized ModelInferResponse carrying `array` in `raw_output_contents`."""
    response = pb.ModelInferResponse(model_name=model_name)
    tensor = response.outputs.add(name=output_name, datatype="FP32")
    tensor.shape.extend(array.shape)
    response.raw_output_contents.append(array.astype("<f4").tobytes())
    return bytes(response.SerializeToString())


def decode_json_answer(body: bytes) -> Array:
    """The first output of a V2 JSON answer."""
    output = json.loads(body)["outputs"][0]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


def decode_binary_answer(body: bytes, header_length: int | None) -> Array:
    """The first output of a binary-extension answer (JSON when the header length is absent)."""
    if header_length is None:
        return decode_json_answer(body)
    output = json.loads(body[:header_length])["outputs"][0]
    if "data" in output:
        return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
    size = int(output["parameters"]["binary_data_size"])
    raw = body[header_length : header_length + size]
    return np.frombuffer(raw, dtype="<f4").reshape(output["shape"])


def decode_grpc_answer(body: bytes) -> Array:
    """The first output of a ModelInferResponse, raw or typed."""
    response = pb.ModelInferResponse.FromString(body)
    output = response.outputs[0]
    if response.raw_output_contents:
        values = np.frombuffer(response.raw_output_contents[0], dtype="<f4")
    else:
        values = np.asarray(output.contents.fp32_contents, dtype=np.float32)
    return values.reshape(tuple(output.shape))
