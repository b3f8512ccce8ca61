"""The Argo CD health check the README documents, run by a real Lua interpreter (lupa).

Argo CD evaluates the check with `obj` bound to the resource; so do we, on the states the
operator writes: none yet, an old generation, Ready, failing, rolling out.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from lupa import LuaRuntime

from tests.data.isvc_cases import ROOT

KEY = "resource.customizations.health.serving.sluice.dev_InferenceService: |"


def _health_check() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(re.escape(KEY) + r"\n((?:    .*\n|\n)+)", readme)
    assert block is not None, "README lost the Argo CD health check"
    return "\n".join(line[4:] for line in block.group(1).splitlines())


def _lua(lua: LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_lua(lua, v) for v in value])
    return value


def _assess(obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime()
    check = lua.eval(f"function(obj) {_health_check()} end")
    result = check(_lua(lua, obj))
    return result["status"], result["message"]


def _condition(kind: str, status: str, message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": "R", "message": message}


def _isvc(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "fraud", "generation": generation}}
    if status is not None:
        obj["status"] = status
    return obj


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "Progressing"),
        ({"observedGeneration": 2, "conditions": [_condition("Ready", "True")]}, "Healthy"),
        (
            {
                "observedGeneration": 2,
                "conditions": [_condition("Ready", "False"), _condition("Degraded", "True")],
            },
            "Degraded",
        ),
        (
            {
                "observedGeneration": 2,
                "conditions": [_condition("Ready", "False"), _condition("Progressing", "True")],
            },
            "Progressing",
        ),
        ({"observedGeneration": 2, "conditions": [_condition("Ready", "False")]}, "Degraded"),
        ({"observedGeneration": 1, "conditions": [_condition("Ready", "True")]}, "Progressing"),
    ],
)
def test_health_follows_ready_for_the_current_generation(
    status: dict[str, Any] | None, expected: str
) -> None:
    assert _assess(_isvc(2, status))[0] == expected


def test_message_is_the_ready_condition_message() -> None:
    status = {
        "observedGeneration": 2,
        "conditions": [
            _condition("Ready", "False", "fraud-1: 2/2 pods CrashLoopBackOff"),
            _condition("Degraded", "True"),
        ],
    }
    assert _assess(_isvc(2, status)) == ("Degraded", "fraud-1: 2/2 pods CrashLoopBackOff")


def test_an_old_generation_says_what_it_waits_for() -> None:
    status = {"observedGeneration": 1, "conditions": [_condition("Ready", "True")]}
    assert _assess(_isvc(3, status)) == (
        "Progressing",
        "Waiting for the operator to observe generation 3",
    )
