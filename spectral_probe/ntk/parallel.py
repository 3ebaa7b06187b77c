"""Work sharing for the structured NTK: kernel tiles and sample chunks on Python threads.

Why not torch's own intra-op threads?  The structured kernel is a sum of
``(G G^T) * (A A^T)`` products, i.e. many medium-sized GEMMs and elementwise
passes.  With torch's threads each of them is split between the cores and
ends at a barrier; on a machine where other processes compete for the cores,
one descheduled thread stalls every barrier, and on the project's shared
2-core machine the kernel ran up to 4x slower with 2 threads than with 1.
Here each worker thread runs whole tiles (or whole sample chunks) with torch
limited to one intra-op thread, and takes the next tile from a shared queue
when it finishes: no barrier, so a slow core only delays its own tiles.

Tile sizes come from ``N`` and the worker count (:func:`plan_tiles`): tiles of
at least ``MIN_TILE`` rows keep each GEMM efficient, and on a symmetric kernel
only the upper-triangle tiles are computed (``(nb + 1) / (2 nb)`` of the work).

How many workers (:func:`default_workers`): torch's thread count, except when
the machine is already oversubscribed (1-minute load average above the CPU
count), where extra threads only queue behind other processes: then one
worker with one intra-op thread.  Measured on the shared 2-core machine at a
load of 4.7 (SIREN 4x256, N = 1024): one worker 0.26 s, two workers 0.58 s,
torch's own two threads 2.5 s.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import torch

__all__ = ["MIN_TILE", "Tile", "plan_tiles", "intraop_threads", "default_workers", "machine_busy", "run_shared"]

#: smallest tile side (rows) worth a GEMM of its own on a CPU
MIN_TILE = 256
#: tiles per worker the planner aims for (load balance under uneven core availability)
TILES_PER_WORKER = 3

Tile = tuple[int, int, int, int]
T = TypeVar("T")


def machine_busy() -> bool:
    """Whether the 1-minute load average exceeds the number of CPUs (runnable tasks queue for cores)."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except (OSError, AttributeError):       # platforms without getloadavg
        return False


def default_workers(device: torch.device | str | None = None) -> int:
    """Worker threads for CPU tensors: ``torch.get_num_threads()``, or 1 on a busy machine or an accelerator."""
    if device is not None and torch.device(device).type != "cpu":
        return 1
    threads = max(1, torch.get_num_threads())
    return 1 if threads > 1 and machine_busy() else threads


def _edges(n: int, parts: int) -> list[int]:
    return [n * i // parts for i in range(parts + 1)]


def plan_tiles(n1: int, n2: int, *, symmetric: bool, workers: int = 1,
               min_tile: int = MIN_TILE) -> tuple[list[Tile], int]:
    """Split an ``n1 x n2`` kernel into tiles.

    Parameters
    ----------
    n1, n2
        Kernel shape (``n1 == n2`` when ``symmetric``).
    symmetric
        Only the upper-triangle tiles (``i <= j``) are returned; the caller
        mirrors them.
    workers
        Threads that will share the tiles.  With more than one worker, the
        grid is refined (down to ``min_tile / 2`` rows) until there are at
        least ``TILES_PER_WORKER`` tiles per worker.
    min_tile
        Smallest tile side used when one worker runs them all.

    Returns
    -------
    tiles, side
        ``(r0, r1, c0, c1)`` tiles, largest first, and the largest tile side
        (for buffer sizes).
    """
    nb1 = max(1, n1 // min_tile)
    nb2 = nb1 if symmetric else max(1, n2 // min_tile)

    def count(b1, b2):
        return b1 * (b1 + 1) // 2 if symmetric else b1 * b2

    floor = max(1, min_tile // 2)
    while workers > 1 and count(nb1, nb2) < TILES_PER_WORKER * workers:
        grow1 = n1 // (nb1 + 1) >= floor
        grow2 = not symmetric and n2 // (nb2 + 1) >= floor
        if not (grow1 or grow2):
            break
        if grow1 and (not grow2 or n1 / nb1 >= n2 / nb2):
            nb1 += 1
        else:
            nb2 += 1
        if symmetric:
            nb2 = nb1
    e1, e2 = _edges(n1, nb1), _edges(n2, nb2)
    tiles = [(e1[i], e1[i + 1], e2[j], e2[j + 1]) for i in range(nb1) for j in range(nb2)
             if not symmetric or j >= i]
    tiles.sort(key=lambda t: -(t[1] - t[0]) * (t[3] - t[2]))
    side = max(max(e1[i + 1] - e1[i] for i in range(nb1)), max(e2[j + 1] - e2[j] for j in range(nb2)))
    return tiles, side


@contextmanager
def intraop_threads(n: int) -> Iterator[None]:
    """Set torch's intra-op threads to ``n`` for the block (process-wide), then restore them."""
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if old != n:
            torch.set_num_threads(old)


def _shared_queue(items: Sequence[T]) -> Callable[[], Iterator[T]]:
    lock = threading.Lock()
    it = iter(items)

    def take() -> Iterator[T]:
        while True:
            with lock:
                item = next(it, None)
            if item is None:
                return
            yield item

    return take


def run_shared(items: Sequence[T], work: Callable[[Iterable[T]], object], workers: int) -> list:
    """Run ``work(stream)`` on ``workers`` threads that share ``items`` through one queue.

    Each call of ``work`` receives an iterator that yields the next unclaimed
    item until none is left; it returns one result per worker.  With one
    worker (or one item) ``work`` runs on the calling thread, with torch's
    thread setting untouched unless the machine is busy (:func:`machine_busy`:
    then one intra-op thread); otherwise torch runs single-threaded inside the
    workers (restored afterwards).  An exception in a worker is re-raised.
    """
    workers = max(1, min(int(workers), len(items)))
    if workers == 1:
        if torch.get_num_threads() > 1 and machine_busy():
            with intraop_threads(1):          # a busy machine: torch's own threads would stall too
                return [work(iter(items))]
        return [work(iter(items))]
    take = _shared_queue(items)
    with intraop_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="ntk") as pool:
        futures = [pool.submit(lambda: work(take())) for _ in range(workers)]
        return [f.result() for f in futures]
