"""glibc malloc settings for a server that receives large tensors.

By default glibc serves every allocation of 128 KiB or more with a fresh mmap, and gives
memory freed at the top of the heap back to the kernel. A request carrying a 128 KiB tensor
then makes several such buffers (socket read, frame payloads, the message, the protobuf
field) and touches every page of each for the first time: about 30 minor page faults per
request, measured here, which cost the event loop more than copying the bytes. Raising the
mmap threshold and keeping freed memory in the heap lets the next request reuse warm pages.
The price is memory that stays in the process after a burst of large requests: at most the
trim threshold above what is in use.
"""

from __future__ import annotations

import logging

from sluice_runtime.libc import libc_function

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h); values in bytes.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 4 << 20  # larger tensors still map fresh memory: their copies cost more
TRIM_THRESHOLD = 64 << 20
TOP_PAD = 16 << 20


def tune_malloc() -> bool:
    """Apply the settings above; False (and nothing changed) where libc has no mallopt."""
    mallopt = libc_function("mallopt")
    if mallopt is None:
        log.info("malloc: no mallopt in this libc, allocator left as it is")
        return False
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD),
    )
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
