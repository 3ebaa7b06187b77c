"""Where the runs of a sweep execute, behind one concurrent.futures-style interface.

Every executor has ``submit_all(fn, items) -> handles``, ``as_completed(handles)``
(yields each handle when its work has ended; ``handle.result()`` returns or
raises) and ``shutdown(cancel=False)``:

* :class:`LocalExecutor` -- a process pool sized to the machine, one torch thread
  per worker (the default; no set-up);
* :class:`FuturesExecutor` -- any ``concurrent.futures.Executor`` (loky,
  mpi4py.futures, a thread pool in tests);
* :class:`SubmititExecutor` -- submitit: one Slurm job array where ``srun``
  exists, one local process per run otherwise (extra ``sweep-slurm``);
* :class:`DaskExecutor` -- a running ``dask.distributed`` scheduler, or a local
  cluster it starts (extra ``sweep-dask``).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import functools
import multiprocessing
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

__all__ = ["SweepExecutor", "FuturesExecutor", "LocalExecutor", "WorkerDied", "SubmititExecutor", "DaskExecutor",
           "make_executor", "EXECUTORS", "default_workers"]

EXECUTORS = ("local", "submitit", "dask")


def default_workers(threads: int = 1) -> int:
    """CPUs this process may use, divided by the threads per worker (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, threads))


class SweepExecutor:
    """Base class: submit many calls, collect them as they end, shut down."""

    description = "executor"

    def submit_all(self, fn: Callable, items: Sequence) -> list:
        return [self.submit(fn, item) for item in items]

    def submit(self, fn: Callable, item):  # pragma: no cover - abstract
        raise NotImplementedError

    def as_completed(self, handles: Iterable) -> Iterator:  # pragma: no cover - abstract
        raise NotImplementedError

    def shutdown(self, cancel: bool = False) -> None:
        """Release the executor; ``cancel=True`` drops work not started yet."""

    def __enter__(self) -> "SweepExecutor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.shutdown(cancel=exc_type is not None)


class FuturesExecutor(SweepExecutor):
    """Adapter for any :class:`concurrent.futures.Executor` (owned: shut down with this object)."""

    def __init__(self, executor: cf.Executor, description: str | None = None) -> None:
        self.executor = executor
        self.description = description or type(executor).__name__

    def submit(self, fn: Callable, item) -> cf.Future:
        return self.executor.submit(fn, item)

    def as_completed(self, handles: Iterable) -> Iterator:
        return cf.as_completed(list(handles))

    def shutdown(self, cancel: bool = False) -> None:
        self.executor.shutdown(wait=not cancel, cancel_futures=cancel)


def _init_worker(threads: int) -> None:
    """Process-pool initializer: ``threads`` torch threads per worker."""
    import torch

    torch.set_num_threads(threads)


#: modules a forkserver imports once, so that each worker starts as a cheap fork of a clean process
_PRELOAD = ["torch", "torch._dynamo", "h5netcdf", "spectral_probe.training.runs", "spectral_probe.training.presets",
            "spectral_probe.sweep.unit"]  # torch._dynamo: imported by torch.optim on first use (~2 s)


def _context() -> multiprocessing.context.BaseContext:
    """``forkserver`` with the heavy modules preloaded where available, else ``spawn``.

    Both start workers from a process that has never run torch (no inherited
    OpenMP pool or CUDA context, unlike ``fork``).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


class WorkerDied(RuntimeError):
    """A local worker process ended abruptly (killed, out of memory, crashed) while running one item."""


class LocalExecutor(SweepExecutor):
    """``workers`` processes with ``threads`` torch threads each, one item in flight per process.

    Each worker is a one-process ``ProcessPoolExecutor`` (started by
    :func:`_context`, so that no worker inherits a parent's OpenMP or CUDA
    state) fed from a queue here, one item at a time.  A worker that dies (out of memory, killed, crashed) thus
    fails exactly the item it was running (:class:`WorkerDied`) and is replaced
    by a fresh process; one shared pool would instead break and fail every
    pending item.  Handles are ``concurrent.futures.Future`` objects.
    """

    def __init__(self, workers: int | None = None, threads: int = 1) -> None:
        self.workers, self.threads = workers or default_workers(threads), threads
        self.description = f"local process pool ({self.workers} worker(s) x {threads} thread(s))"
        self._lanes: list[cf.ProcessPoolExecutor | None] = [None] * self.workers
        self._idle = list(range(self.workers))
        self._queue: collections.deque = collections.deque()
        self._broken: list[cf.ProcessPoolExecutor] = []
        self._lock = threading.Lock()
        self._closing = False

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=1, mp_context=_context(), initializer=_init_worker,
                                      initargs=(self.threads,))

    def submit(self, fn: Callable, item) -> cf.Future:
        proxy: cf.Future = cf.Future()
        proxy.set_running_or_notify_cancel()
        with self._lock:
            self._queue.append((proxy, fn, item))
        self._pump()
        return proxy

    def _pump(self) -> None:
        """Hand queued items to idle workers."""
        while True:
            with self._lock:
                if self._closing or not self._queue or not self._idle:
                    return
                lane = self._idle.pop()
                proxy, fn, item = self._queue.popleft()
                if self._lanes[lane] is None:
                    self._lanes[lane] = self._new_pool()
                pool = self._lanes[lane]
            try:
                inner = pool.submit(fn, item)
            except (BrokenProcessPool, RuntimeError) as exc:   # broken, or shut down meanwhile
                inner = cf.Future()
                inner.set_exception(exc)
            inner.add_done_callback(functools.partial(self._done, lane, proxy))

    def _done(self, lane: int, proxy: cf.Future, inner: cf.Future) -> None:
        exc = None if inner.cancelled() else inner.exception()
        if inner.cancelled():
            proxy.set_exception(cf.CancelledError())
        elif isinstance(exc, BrokenProcessPool):
            proxy.set_exception(WorkerDied("the worker process died (killed, out of memory or crashed) "
                                           "while running this item"))
        elif exc is not None:
            proxy.set_exception(exc)
        else:
            proxy.set_result(inner.result())
        with self._lock:
            if isinstance(exc, BrokenProcessPool):     # replace the dead process on next use
                self._broken.append(self._lanes[lane])
                self._lanes[lane] = None
            if isinstance(exc, KeyboardInterrupt):     # Ctrl-C reached the workers too: start nothing new
                self._closing = True
            self._idle.append(lane)
        self._pump()

    def as_completed(self, handles: Iterable) -> Iterator:
        return cf.as_completed(list(handles))

    def shutdown(self, cancel: bool = False) -> None:
        # every result is in by now (or we are cancelling): let the workers tear down in the background
        with self._lock:
            self._closing = True
            queued, self._queue = list(self._queue), collections.deque()
            pools = [p for p in [*self._lanes, *self._broken] if p is not None]
        for proxy, _fn, _item in queued:
            proxy.set_exception(cf.CancelledError())
        for pool in pools:
            if cancel:
                _terminate(pool)
            pool.shutdown(wait=False, cancel_futures=cancel)


def _terminate(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool's worker processes now (an interrupted sweep must not wait for running items)."""
    terminate = getattr(pool, "terminate_workers", None)        # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


def _missing_extra(module: str, extra: str) -> ValueError:
    return ValueError(f"this executor needs {module}, which is not installed; "
                      f"pip install 'spectral-probe[{extra}]'")


class SubmititExecutor(SweepExecutor):
    """submitit's AutoExecutor: a Slurm job array per sweep, or local processes without Slurm.

    Parameters
    ----------
    folder
        Where submitit keeps pickled jobs and logs (``<outdir>/submitit``).
    cluster
        None or ``"auto"``: Slurm where available, else local processes;
        ``"slurm"``, ``"local"``, or ``"debug"`` (in this process).
    parameters
        Passed to ``update_parameters``: ``timeout_min``, ``mem_gb``,
        ``cpus_per_task``, ``gpus_per_node``, ``slurm_partition``,
        ``slurm_array_parallelism``, ...
    poll
        Seconds between status checks.
    """

    def __init__(self, folder: str | Path, cluster: str | None = None, parameters: dict | None = None,
                 poll: float = 1.0) -> None:
        try:
            import submitit
        except ImportError:
            raise _missing_extra("submitit", "sweep-slurm") from None
        cluster = None if cluster in (None, "auto") else cluster
        try:
            self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
            self.executor.update_parameters(**(parameters or {}))
        except (NameError, AssertionError, ValueError, RuntimeError) as exc:
            raise ValueError(f"submitit: {str(exc).splitlines()[0]}") from None
        self.poll = poll
        self.description = f"submitit ({self.executor.cluster}; jobs in {folder})"
        self._jobs: list = []

    def submit_all(self, fn: Callable, items: Sequence) -> list:
        if not items:
            return []
        with self.executor.batch():           # one job array
            jobs = [self.executor.submit(fn, item) for item in items]
        self._jobs = jobs
        return jobs

    def submit(self, fn: Callable, item):
        return self.executor.submit(fn, item)

    def as_completed(self, handles: Iterable) -> Iterator:
        pending = list(handles)
        while pending:
            done = [job for job in pending if job.done()]
            for job in done:
                pending.remove(job)
                yield job
            if pending and not done:
                time.sleep(self.poll)

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            for job in self._jobs:
                if not job.done():
                    job.cancel(check=False)


class DaskExecutor(SweepExecutor):
    """Runs on a dask.distributed cluster: the scheduler at ``address``, or a local cluster it starts.

    Parameters
    ----------
    address
        ``tcp://host:port`` of a running scheduler; None starts a
        ``LocalCluster`` of ``workers`` processes with one thread each.
    workers
        Workers of the local cluster.
    connect_timeout
        Seconds to wait for the scheduler before giving up.
    """

    def __init__(self, address: str | None = None, workers: int | None = None,
                 connect_timeout: float = 10.0) -> None:
        try:
            import distributed
        except ImportError:
            raise _missing_extra("dask.distributed", "sweep-dask") from None
        from ..torch_settings import kept_environment

        self._cluster, self._futures, self._environ = None, [], {}
        if address is None:
            # dask's nanny sets its workers' variables (OMP_NUM_THREADS=1, PYTHONHASHSEED, ...) in this process
            with kept_environment() as self._environ:
                self._cluster = distributed.LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                                                         processes=True, dashboard_address=None)
            address = self._cluster.scheduler_address
        self.address = address
        self.client = _connect(distributed, address, connect_timeout)
        self.description = f"dask scheduler {address} ({len(self.client.nthreads())} worker(s))"

    def submit(self, fn: Callable, item):
        key = f"{getattr(fn, '__name__', 'run')}-{getattr(item, 'run_id', id(item))}"
        future = self.client.submit(fn, item, key=key, pure=False)
        self._futures.append(future)
        return future

    def as_completed(self, handles: Iterable) -> Iterator:
        from distributed import as_completed

        return iter(as_completed(list(handles), loop=self.client.loop))

    def shutdown(self, cancel: bool = False) -> None:
        if cancel and self._futures:
            self.client.cancel(self._futures)
        from ..torch_settings import restore_environment

        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            restore_environment(self._environ)          # a worker restarted meanwhile set them again


def _connect(distributed, address: str, timeout: float):
    """A Client for ``address``, or a one-line OSError when the scheduler cannot be reached."""
    import logging

    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.CRITICAL)     # the one-line error below says it all
    try:
        return distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OSError(f"cannot reach the dask scheduler at {address!r} ({why}); start one with `dask scheduler` "
                      "(and `dask worker <address>`), fix --scheduler or raise --connect-timeout") from None
    finally:
        log.setLevel(level)


def make_executor(kind: str | None = "local", *, workers: int | None = None, threads: int = 1,
                  scheduler: str | None = None, connect_timeout: float = 10.0, cluster: str | None = None,
                  folder: str | Path | None = None, slurm: dict | None = None) -> SweepExecutor:
    """Build an executor by name (``local``, ``submitit``, ``dask``; None: dask when ``scheduler`` is given, else local)."""
    if scheduler is not None and kind not in ("dask", None):
        raise ValueError(f"--scheduler {scheduler} is a dask scheduler address, but the executor is {kind!r}; "
                         "drop --executor or use --executor dask")
    kind = "dask" if scheduler is not None else (kind or "local")
    if kind == "local":
        return LocalExecutor(workers, threads)
    if kind == "dask":
        return DaskExecutor(scheduler, workers, connect_timeout)
    if kind == "submitit":
        if folder is None:
            raise ValueError("the submitit executor needs a folder for its jobs and logs")
        return SubmititExecutor(folder, cluster, slurm)
    raise ValueError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTORS)}")
