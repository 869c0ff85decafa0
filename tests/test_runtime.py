"""Process-level memory settings (``analogdiff._runtime``), checked against the kernel's own count of resident
memory (``/proc/self/status``), in a fresh interpreter so the test's process is left as it was."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = r"""
import numpy as np
from analogdiff._runtime import keep_freed_memory, return_freed_memory

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

keep_freed_memory()                      # glibc keeps freed memory: trim threshold 1 GiB, mmap threshold 32 MiB
base = rss_mb()
blocks = [np.ones(1 << 17) for _ in range(200)]   # 200 × 1 MiB from the heap, touched
held = rss_mb()
del blocks
freed = rss_mb()                         # still resident: glibc kept it
return_freed_memory()
print(base, held, freed, rss_mb())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists() or not sys.platform.startswith("linux"),
                    reason="reads Linux's resident-memory count")
def test_return_freed_memory_hands_kept_memory_back():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True,
                         env={**os.environ, "ANALOGDIFF_KEEP_MALLOC": "1"}).stdout
    base, held, freed, trimmed = map(float, out.split())
    assert held - base > 150                 # the 200 MiB were resident
    if freed - base < 150:
        pytest.skip("this libc returned the memory on free already (not glibc with keep_freed_memory)")
    assert freed - trimmed > 150             # and go back to the kernel only on return_freed_memory
