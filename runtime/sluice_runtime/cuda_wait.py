"""How the model thread waits for the GPU: spin on a core, or sleep until the GPU is done.

The CUDA runtime's default ('auto') spins while a run finishes on the GPU, which keeps a
whole core busy per worker for the length of every run. The event loops need that core: on
an H100, with four workers, spinning cost as much CPU per request as the requests
themselves (bench/results/gpu.md). `block` asks CUDA to put the waiting thread to sleep
(cudaDeviceScheduleBlockingSync); `spin` keeps the default. It must be set before the
device's primary context exists, so before the first CUDA session of the process.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

_FLAGS = {"spin": 1, "block": 4}  # cudaDeviceScheduleSpin, cudaDeviceScheduleBlockingSync
# onnxruntime-gpu 1.31 links CUDA 13's runtime; the same soname returns the same library.
_RUNTIMES = ("libcudart.so.13", "libcudart.so.12", "libcudart.so")


def set_cuda_wait(mode: str) -> bool:
    """Apply `mode` to this process's CUDA device flags; False (logged) if CUDA refuses."""
    for name in _RUNTIMES:
        try:
            runtime = ctypes.CDLL(name)
        except OSError:
            continue
        status = runtime.cudaSetDeviceFlags(_FLAGS[mode])
        if status != 0:
            log.warning("cudaSetDeviceFlags(%s) failed with CUDA error %d", mode, status)
        return bool(status == 0)
    log.warning("no CUDA runtime library found to set the GPU wait mode %r", mode)
    return False
