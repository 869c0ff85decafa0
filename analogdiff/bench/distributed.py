"""Where bench runs and tuning trials execute: in this process, on a Dask ``LocalCluster``, or on an
existing Dask cluster (``--scheduler tcp://host:port``).

Every task runs with one torch thread wherever it runs, so a run's floating-point operations happen in the
same order serially and on any worker: the same seeds give bit-identical results serially and distributed.
Workers of an external cluster need analogdiff installed (same version) and the same checkpoints.

    with Pool(workers=2) as pool:                 # LocalCluster with 2 single-threaded worker processes
        for index, result in pool.map_unordered(fn, items):
            ...
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable, Iterator, Sequence

from analogdiff.checks import ConfigError


def default_workers() -> int:
    """Workers of the default LocalCluster: one per CPU core."""
    return max(1, os.cpu_count() or 1)


def run_single_threaded(fn: Callable, *args: Any) -> Any:
    """Call ``fn(*args)`` with torch, the BLAS under NumPy and numba limited to one thread, restored
    afterwards: the same operations in the same order wherever the task runs."""
    import contextlib

    import numba
    import torch

    from analogdiff._runtime import keep_freed_memory

    keep_freed_memory()

    try:  # installed with aihwkit's scikit-learn; without it NumPy's BLAS keeps its own thread count
        from threadpoolctl import threadpool_limits
        blas = threadpool_limits(limits=1)
    except ImportError:
        blas = contextlib.nullcontext()
    before = torch.get_num_threads()
    nb_before = numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        with blas:
            return fn(*args)
    finally:
        torch.set_num_threads(before)
        numba.set_num_threads(nb_before)


class _Done:
    """A finished 'future' for the serial pool: holds a result or an exception."""

    def __init__(self, fn: Callable, args: tuple):
        try:
            self._value, self._error = run_single_threaded(fn, *args), None
        except BaseException as e:  # re-raised by result(), as a Dask future would
            if isinstance(e, KeyboardInterrupt):
                raise
            self._value, self._error = None, e

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value

    def done(self) -> bool:
        return True

    def cancel(self) -> None:
        pass


class Pool:
    """Runs tasks serially (``workers=0``), on a new LocalCluster (``workers=N``, default: CPU cores) or on the
    cluster at ``scheduler`` (then ``workers`` is ignored). Use as a context manager."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
            raise ConfigError(f"--workers: must be an integer >= 0 (0 = run in this process), got {workers!r}")
        if scheduler is not None and not (isinstance(scheduler, str) and "://" in scheduler):
            raise ConfigError(f"--scheduler: expected an address like tcp://host:8786, got {scheduler!r}")
        self.scheduler = scheduler
        self.workers = default_workers() if workers is None else workers
        self.client = None
        self._cluster = None

    @property
    def serial(self) -> bool:
        return self.scheduler is None and self.workers == 0

    @property
    def parallelism(self) -> int:
        """How many tasks can run at once."""
        if self.client is None:
            return 1
        return max(1, sum(self.client.nthreads().values()))

    def describe(self) -> str:
        if self.serial:
            return "serial (this process)"
        if self.scheduler:
            return f"Dask cluster at {self.scheduler} ({self.parallelism} worker threads)"
        return f"Dask LocalCluster, {self.workers} worker processes x 1 thread"

    def __enter__(self) -> "Pool":
        if self.serial:
            return self
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except (OSError, TimeoutError) as e:
                raise ConfigError(f"--scheduler: cannot connect to {self.scheduler} ({e})") from None
        else:
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address=None,
                                         silence_logs=logging.ERROR)
            self.client = Client(self._cluster)
            self._worker_pids = sorted(self.client.run(os.getpid).values())
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Close the client (the cluster forgets this client's tasks) and a LocalCluster we started. After an
        error or Ctrl-C, the LocalCluster's worker processes are killed rather than waited for."""
        import contextlib
        import signal

        aborted = exc_type is not None
        if aborted and self._cluster is not None:
            for pid in getattr(self, "_worker_pids", []):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        for thing in (self.client, self._cluster):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close(timeout=5 if aborted else 60)
        self.client = self._cluster = None

    def submit(self, fn: Callable, *args: Any):
        """Start ``fn(*args)`` (single-threaded); returns a future with ``.result()``. Serially it runs now."""
        if self.client is None:
            return _Done(fn, args)
        return self.client.submit(run_single_threaded, fn, *args, pure=False)

    def wait_first(self, futures: Sequence, timeout: float | None = None) -> tuple[list, list]:
        """Block until one of ``futures`` is done or ``timeout`` seconds passed; returns (done, not_done)."""
        done = [f for f in futures if f.done()]
        if not done and self.client is not None:
            from distributed import wait

            try:
                wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            done = [f for f in futures if f.done()]
        done_ids = {id(f) for f in done}
        return done, [f for f in futures if id(f) not in done_ids]

    def map_unordered(self, fn: Callable, items: Iterable[Any],
                      groups: Sequence[Any] | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(item))`` as each task finishes. A failed task raises here (those already
        finished were yielded before); leaving the pool then drops the tasks not yet run.

        ``groups`` (one hashable per item, None = no preference): on a cluster, items of the same group are
        sent to the same worker (groups spread over workers, largest first to the least loaded), so
        whatever a worker caches for a group (a programmed model) is built once. The preference is loose: if
        that worker leaves the cluster, another one takes its tasks."""
        items = list(items)
        if self.client is None:
            for i, item in enumerate(items):
                yield i, run_single_threaded(fn, item)
            return
        from distributed import as_completed

        where = self._assign(groups) if groups is not None else {}
        futures = {}
        for i, item in enumerate(items):
            g = groups[i] if groups is not None else None
            kw = {"workers": [where[g]], "allow_other_workers": True} if g is not None and g in where else {}
            futures[self.client.submit(run_single_threaded, fn, item, pure=False, **kw)] = i
        for fut in as_completed(list(futures)):  # leaving early: closing the client releases the rest
            yield futures[fut], fut.result()

    def _assign(self, groups: Sequence[Any]) -> dict:
        """Group → worker address, balancing the number of items per worker."""
        workers = sorted(self.client.scheduler_info()["workers"])
        if len(workers) < 2:
            return {}
        sizes: dict = {}
        for g in groups:
            if g is not None:
                sizes[g] = sizes.get(g, 0) + 1
        load = {w: 0 for w in workers}
        out = {}
        for g, n in sorted(sizes.items(), key=lambda kv: (-kv[1], repr(kv[0]))):
            w = min(workers, key=lambda a: (load[a], a))
            out[g] = w
            load[w] += n
        return out
