"""The shadow copy's wire format: a V2 binary infer request plus the primary's answer.

`POST /v2/models/{model}/shadow`, sent by a primary's `ShadowTee` to its shadow runtime::

    Content-Type: application/octet-stream
    Inference-Header-Content-Length: <bytes of the JSON header>
    X-Request-ID: <the primary request's id>

    {"id": "<request id>",
     "parameters": {...the client's request parameters...},
     "inputs": [{"name", "datatype", "shape", "parameters": {"binary_data_size": n}}, ...],
     "outputs": [{"name": ...}, ...],              # what the primary returned: run the same
     "primary": {"model_name": "m", "model_version": "7", "latency_seconds": 0.0031},
     "primary_outputs": [{"name", "datatype", "shape",
                          "parameters": {"binary_data_size": n}}, ...]}
    <input bytes, in order><primary output bytes, in order>

Everything up to `primary` is an ordinary V2 binary-extension infer request, so the inputs
decode exactly as `/infer` decodes them; `primary_outputs` uses the same tensor form (JSON
`data` is accepted too, for hand-written copies). The tee always sends binary: it costs a
memory view per tensor instead of a JSON rendering of every element.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sluice_runtime.errors import InvalidInput
from sluice_runtime.rest.http import BINARY
from sluice_runtime.rest.jsonio import dumps, loads
from sluice_runtime.rest.v2_codec import (
    _decode_inputs,
    _decode_outputs,
    _header_length,
    _parameters,
)
from sluice_runtime.shadow import EncodedCopy, ShadowCopy
from sluice_runtime.tensorcodec import Buffer, raw_from_array
from sluice_runtime.tensors import InferRequest, Tensor
from sluice_runtime.transport import REQUEST_ID_HEADER

SHADOW_ROUTE = "/v2/models/{model_name}/shadow"


def shadow_path(model_name: str) -> str:
    """The shadow route for a model name (the shadow serves the primary's model name)."""
    return f"/v2/models/{quote(model_name, safe='')}/shadow"


def encode_shadow_copy(copy: ShadowCopy) -> EncodedCopy:
    """The copy as one binary-extension body; tensor bytes are views, joined once."""
    buffers: list[Buffer] = []
    request = copy.request
    doc: dict[str, Any] = {
        "id": request.id,
        "inputs": [_binary_entry(tensor, buffers) for tensor in request.inputs],
        "outputs": [{"name": tensor.name} for tensor in copy.primary_outputs],
        "primary": {
            "model_name": copy.primary_model,
            "model_version": copy.primary_version,
            "latency_seconds": copy.primary_latency_seconds,
        },
        "primary_outputs": [_binary_entry(tensor, buffers) for tensor in copy.primary_outputs],
    }
    if request.parameters:
        doc["parameters"] = request.parameters
    header = dumps(doc)
    return EncodedCopy(
        path=shadow_path(copy.primary_model),
        content=b"".join([header, *buffers]),
        headers={
            "content-type": BINARY,
            "inference-header-content-length": str(len(header)),
            REQUEST_ID_HEADER: request.id,
        },
    )


def _binary_entry(tensor: Tensor, buffers: list[Buffer]) -> dict[str, Any]:
    raw = raw_from_array(tensor.datatype, tensor.data)
    buffers.append(raw)
    return {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": list(tensor.shape),
        "parameters": {"binary_data_size": len(raw)},
    }


def decode_shadow_copy(body: Buffer, header_length: str | None, fallback_id: str) -> ShadowCopy:
    """Parse a copy; InvalidInput names the field that is wrong."""
    view = memoryview(body)
    length = len(view) if header_length is None else _header_length(header_length, len(view))
    header, binary = view[:length], view[length:]
    doc = loads(header)
    if not isinstance(doc, dict):
        raise InvalidInput("shadow copy body must be a JSON object")
    inputs, used = _decode_inputs(doc.get("inputs"), binary)
    if not isinstance(doc.get("primary_outputs"), list):
        raise InvalidInput("shadow copy: 'primary_outputs' must be a list of tensors")
    primary_outputs, used_by_outputs = _decode_inputs(doc["primary_outputs"], binary[used:])
    left = len(binary) - used - used_by_outputs
    if left:
        raise InvalidInput(
            f"shadow copy: binary data has {left} bytes after the inputs' and primary_outputs' "
            "binary_data_size total"
        )
    primary = doc.get("primary")
    if not isinstance(primary, dict):
        raise InvalidInput(
            "shadow copy: 'primary' must be an object with model_name, model_version and "
            "latency_seconds"
        )
    request_id = doc.get("id")
    request = InferRequest(
        id=request_id if isinstance(request_id, str) and request_id else fallback_id,
        inputs=inputs,
        outputs=_decode_outputs(doc.get("outputs")),
        parameters=_parameters(doc.get("parameters"), "request"),
    )
    return ShadowCopy(
        request=request,
        primary_outputs=primary_outputs,
        primary_model=_string(primary, "model_name"),
        primary_version=_string(primary, "model_version"),
        primary_latency_seconds=_seconds(primary),
    )


def _string(primary: dict[str, Any], key: str) -> str:
    value = primary.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"shadow copy: primary.{key} must be a non-empty string, got {value!r}")
    return value


def _seconds(primary: dict[str, Any]) -> float:
    value = primary.get("latency_seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidInput(
            f"shadow copy: primary.latency_seconds must be a number >= 0, got {value!r}"
        )
    return float(value)
