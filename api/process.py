"""Process-wide tuning for a citekb process: a server or a big ingest runs long, often on a
machine that is busy with other work."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value


def fix_malloc_mmap_threshold() -> bool:
    """Pin glibc's mmap threshold, so that large blocks (an embedding batch's tensors) are mapped
    on allocation and unmapped on free.

    By default glibc raises the threshold each time such a block is freed, up to 32 MiB, and from
    then on serves large blocks from the heap. Batches of ever-different shapes (every question
    and passage has its own length) then fragment the heap: a server's memory grew by about
    0.5 MiB a question, to over 1 GiB, and never came back. With the threshold pinned it levels
    off after warm-up (docs/benchmarks.md, load test). Same as MALLOC_MMAP_THRESHOLD_=131072 in
    the environment, but set from inside, so every way of starting citekb gets it. Returns whether
    it took effect (False on systems without glibc's mallopt)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    log.debug("malloc mmap threshold pinned=%s bytes=%d", done, MMAP_THRESHOLD_BYTES)
    return done


def passive_openmp_waits() -> bool:
    """Make torch's OpenMP threads sleep, not spin, while they wait for each other. Call before
    torch is imported (the runtime reads OMP_WAIT_POLICY once); returns False if too late.

    On a machine whose cores are busy with other work, spinning threads wait for a partner the
    scheduler has put aside: embedding one question took 460-620 ms instead of 13 ms on 2
    cores at load average 7 (docs/benchmarks.md). Sleeping costs nothing measurable when the
    machine is quiet. A value the user has set is kept."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "torch" in sys.modules:
        log.debug("OMP_WAIT_POLICY set after torch was imported; it may not take effect")
        return False
    return True
