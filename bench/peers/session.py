"""The onnxruntime session every peer opens: the same options Sluice's runtime uses.

Imported by the peer servers inside their own virtualenvs. Keeping one definition here means
a change to Sluice's session options (runtime/sluice_runtime/model.py) is mirrored in one
place, so the benchmark compares serving stacks, not onnxruntime settings.
"""

from __future__ import annotations

from typing import Any

import onnxruntime as ort


def open_session(path: str, device: str = "cpu") -> Any:
    """A session as `sluice_runtime.model.session_options(1)` makes it, on `device`.

    One intra-op thread: every server gets one core, and onnxruntime's default pool would
    start a thread per physical core of the host and pin those threads to other cores, out of
    the server's `taskset`. Idle pool threads sleep instead of spinning, as Sluice's do.
    `cuda` asks for the CUDA provider first, as Sluice's `--device cuda` does, and fails
    rather than timing the CPU when the session does not take it.
    """
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(path, sess_options=options, providers=providers)
    if session.get_providers()[0] != providers[0]:
        raise SystemExit(f"asked for {providers[0]}, the session took {session.get_providers()}")
    return session
