"""Process-level settings for the numeric work of the simulator.

``keep_freed_memory``: glibc hands every allocation above its mmap threshold back to the kernel on free,
and the kernel zero-fills those pages again on the next allocation. The crossbar allocates many large
temporaries (IR-drop solves, tile partial sums, read-noise variances), so this costs a lot, most of all in
Dask workers, whose nanny sets MALLOC_TRIM_THRESHOLD_=65536 (``distributed.nanny.pre-spawn-environ``); that
also freezes glibc's mmap threshold at 128 KiB. Measured here: the default bench suite spent 42% of its CPU
time in the kernel (sys 21 min of 50; 25 min wall) and 14:45 min wall with this setting; the shipped MDLM's
analog forward (batch 32 × 256, pcm-ibm) ran 0.60 s → 0.49 s. Set ANALOGDIFF_KEEP_MALLOC=0 to leave glibc as
it is.
"""
from __future__ import annotations

import functools
import os

_DONE = False


def keep_freed_memory() -> None:
    """Let glibc keep freed memory for reuse: trim threshold 1 GiB, mmap threshold 32 MiB (glibc's maximum
    on 64-bit). Once per process; no-op off glibc or with ANALOGDIFF_KEEP_MALLOC=0."""
    global _DONE
    if _DONE:
        return
    _DONE = True
    if os.environ.get("ANALOGDIFF_KEEP_MALLOC", "1") == "0":
        return
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD


def return_freed_memory() -> None:
    """Hand the memory glibc holds free back to the kernel now (``malloc_trim(0)``): the counterpart of
    ``keep_freed_memory`` for memory-bound runs, called between layers when a model is programmed or moved
    in lean mode (``analogize(..., keep_state_cache=False)``). Measured on the 124M model without IR drop
    (``benchmarks/bench_scale.py``'s model): 6.2–7.2 GB resident after programming, 5.2 GB after one trim,
    for 4.9 GB of live tensors. No-op off glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.lru_cache(maxsize=1)
def _glibc():
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - AttributeError off glibc
    except (OSError, AttributeError):
        return None
    return libc
