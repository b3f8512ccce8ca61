"""Our inference.proto against Triton's (as shipped in tritonclient), field by field.

Wire compatibility is numbers and types, not names: every field we declare must carry
the same number, type and cardinality as Triton's field of that name, and every RPC the
same request and response messages. The generated modules must match the proto.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sluice_runtime.grpc.generated import inference_pb2 as ours
from tritonclient.grpc import model_config_pb2, service_pb2

ROOT = Path(__file__).resolve().parents[3]
# Fields in the Open Inference Protocol that Triton's proto does not have.
OIP_ONLY = {("ModelMetadataResponse", "properties")}


def triton_message(name: str) -> Any:
    for module in (service_pb2, model_config_pb2):
        if name in module.DESCRIPTOR.message_types_by_name:
            return module.DESCRIPTOR.message_types_by_name[name]
    raise AssertionError(f"Triton has no message {name}")


def pairs() -> list[tuple[Any, Any]]:
    """(our descriptor, Triton's) for every message we declare, nested ones included."""
    found: list[tuple[Any, Any]] = []

    def walk(mine: Any, theirs: Any) -> None:
        found.append((mine, theirs))
        for nested in mine.nested_types:
            if nested.GetOptions().map_entry:
                continue
            walk(nested, theirs.nested_types_by_name[nested.name])

    for name, descriptor in ours.DESCRIPTOR.message_types_by_name.items():
        walk(descriptor, triton_message(name))
    return found


@pytest.mark.parametrize(("mine", "theirs"), pairs(), ids=lambda d: d.full_name)
def test_every_field_has_tritons_number_type_and_cardinality(mine: Any, theirs: Any) -> None:
    assert mine.full_name == theirs.full_name
    for field in mine.fields:
        if (mine.name, field.name) in OIP_ONLY:
            assert field.number not in theirs.fields_by_number
            continue
        other = theirs.fields_by_name[field.name]
        assert (field.number, field.type, field.is_repeated) == (
            other.number,
            other.type,
            other.is_repeated,
        ), field.full_name
        if field.message_type is not None:
            assert field.message_type.full_name == other.message_type.full_name
        if field.enum_type is not None:
            assert field.enum_type.full_name == other.enum_type.full_name
        assert field.containing_oneof is None or (
            field.containing_oneof.name == other.containing_oneof.name
        )


def test_enum_values_match_tritons() -> None:
    for name, enum in ours.DESCRIPTOR.enum_types_by_name.items():
        theirs = model_config_pb2.DESCRIPTOR.enum_types_by_name[name]
        assert {v.name: v.number for v in enum.values} == {v.name: v.number for v in theirs.values}


def test_every_rpc_has_tritons_path_and_messages() -> None:
    service = ours.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    theirs = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert {m.name for m in service.methods} == {
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
        "ModelConfig",
    }
    for method in service.methods:
        other = theirs.methods_by_name[method.name]
        assert method.input_type.full_name == other.input_type.full_name
        assert method.output_type.full_name == other.output_type.full_name


def test_a_message_triton_wrote_reads_back_identically() -> None:
    request = service_pb2.ModelInferRequest(model_name="m", model_version="2", id="r")
    tensor = request.inputs.add(name="x", datatype="INT32", shape=[1, 2])
    tensor.contents.int_contents.extend([7, -8])
    tensor.parameters["p"].int64_param = 5
    request.outputs.add(name="y").parameters["binary_data"].bool_param = True
    request.raw_input_contents.append(b"\x01\x02")
    parsed = ours.ModelInferRequest.FromString(request.SerializeToString())
    assert parsed.SerializeToString(deterministic=True) == request.SerializeToString(
        deterministic=True
    )
    assert list(parsed.inputs[0].contents.int_contents) == [7, -8]


def test_generated_code_is_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack/generate_grpc.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
