"""Process-wide tuning for a citekb process that runs long (a server, a big ingest)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
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
