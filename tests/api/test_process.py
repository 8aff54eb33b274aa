"""The allocator tuning that keeps a long-running citekb's memory level (api/process.py)."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

import pytest

from citekb.api.process import fix_malloc_mmap_threshold, passive_openmp_waits

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's; other C libraries keep their own policy")
def test_pinned_threshold_hands_a_freed_large_block_back_to_the_system() -> None:
    # A fresh interpreter: whether glibc has already raised its threshold depends on history.
    # Free a 1 MiB block (glibc then raises its dynamic threshold above 1 MiB), allocate and free
    # 512 KiB blocks again: pinned, each is an mmap that leaves nothing behind in the heap.
    probe = """
import ctypes, sys
from citekb.api.process import fix_malloc_mmap_threshold, passive_openmp_waits
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
if sys.argv[1] == "pinned":
    assert fix_malloc_mmap_threshold()
libc.free(libc.malloc(1 << 20))
blocks = [libc.malloc(512 << 10) for _ in range(8)]
mapped = libc.mallinfo2().hblks
for b in blocks:
    libc.free(b)
print(mapped)
"""
    counts = {mode: int(subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, check=True).stdout)
              for mode in ("default", "pinned")}
    assert counts["pinned"] >= 8  # each 512 KiB block its own mapping
    assert counts["default"] < 8  # glibc's default served them from the heap after the 1 MiB free


def test_returns_false_where_there_is_no_mallopt(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_libc(*args: object, **kwargs: object) -> None:
        raise OSError("no C library here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert fix_malloc_mmap_threshold() is False


def test_openmp_waits_are_passive_in_the_cli_unless_the_user_chose() -> None:
    probe = "import os, sys; from citekb.api.cli import main; main(['--version']) ; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout
    assert out.splitlines()[-1] == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**env, "OMP_WAIT_POLICY": "ACTIVE"}).stdout
    assert out.splitlines()[-1] == "ACTIVE"


def test_passive_waits_report_when_torch_came_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())
    assert passive_openmp_waits() is False
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
