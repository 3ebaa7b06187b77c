"""How the structured NTK uses the CPU: kernel tiles, threads, and a busy machine.

The structured kernel is a sum of ``(G G^T) * (A A^T)`` products over layers.
It is computed tile by tile (:func:`plan_tiles`): tiles of at least
``MIN_TILE`` rows keep each GEMM efficient, each tile accumulates all layers
while it sits in cache, and on a symmetric kernel only the upper tiles are
computed, the diagonal ones split once more into halves (at ``N = 1024``, 56 %
of the full kernel's GEMM work; 52 % at 4096).

Threads.  Torch's intra-op threads run each GEMM when the machine has cores to
spare.  When it does not (1-minute load average above the CPU count plus
:data:`BUSY_MARGIN`), every barrier of a multi-threaded GEMM waits for a thread
that other processes have descheduled, so the work runs on one thread instead
(:func:`cpu_guard`).  Measured on the shared 2-core machine, SIREN 4x256,
``N = 1024``, capture + kernel, torch set to 2 threads:

=========  ================  ===================  ======================
load       one thread        torch's 2 threads    2 Python workers x 1
=========  ================  ===================  ======================
1.5        0.083 s           0.054 s              0.073 s
2.6        0.082 s           0.814 s              0.278 s
4.7        0.26 s            2.5 s                0.58 s
=========  ================  ===================  ======================

so the default is torch's threads on a quiet machine and one thread on a busy
one; Python worker threads sharing the tiles (:func:`run_shared`, ``workers=``)
are available but never won by default.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import torch

from ..torch_settings import torch_threads

__all__ = ["MIN_TILE", "Tile", "plan_tiles", "default_workers", "machine_busy", "cpu_guard",
           "run_shared"]

#: smallest tile side (rows) worth a GEMM of its own on a CPU
MIN_TILE = 256
#: tiles per worker the planner aims for (load balance under uneven core availability)
TILES_PER_WORKER = 3

Tile = tuple[int, int, int, int]
T = TypeVar("T")


#: load above the CPU count that marks the machine as busy (our own threads already count ~ the CPU count
#: when a multi-threaded job runs on an otherwise idle machine)
BUSY_MARGIN = 0.5


def machine_busy() -> bool:
    """Whether the 1-minute load average exceeds the CPU count by more than :data:`BUSY_MARGIN`
    (runnable tasks queue for cores, so extra threads of ours would wait at every barrier)."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1) + BUSY_MARGIN
    except (OSError, AttributeError):       # platforms without getloadavg
        return False


def default_workers(device: torch.device | str | None = None) -> int:
    """Worker threads sharing tiles or chunks by default: 1 (see the module docstring)."""
    return 1


def cpu_guard(device: torch.device | str | None = None):
    """Context: one intra-op thread when the machine is busy (CPU only), else nothing changes."""
    if (device is None or torch.device(device).type == "cpu") and torch.get_num_threads() > 1 \
            and machine_busy():
        return torch_threads(1)
    return nullcontext()


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
             if not symmetric or j > i]
    if symmetric:
        for i in range(nb1):
            tiles.extend(_split_diagonal(e1[i], e1[i + 1], max(1, min_tile // 2)))
    tiles.sort(key=lambda t: -(t[1] - t[0]) * (t[3] - t[2]))
    side = max(max(e1[i + 1] - e1[i] for i in range(nb1)), max(e2[j + 1] - e2[j] for j in range(nb2)))
    return tiles, side


def _split_diagonal(r0: int, r1: int, smallest: int) -> list[Tile]:
    """A diagonal tile as two diagonal halves and one off-diagonal half (recursively, down to
    ``smallest`` rows): the GEMM work of a diagonal block falls from all of it towards half."""
    if r1 - r0 < 2 * smallest:
        return [(r0, r1, r0, r1)]
    mid = (r0 + r1) // 2
    return [(r0, mid, mid, r1)] + _split_diagonal(r0, mid, smallest) + _split_diagonal(mid, r1, smallest)


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
    worker (or one item) ``work`` runs on the calling thread under
    :func:`cpu_guard`; otherwise torch runs single-threaded inside the workers
    (restored afterwards).  An exception in a worker is re-raised.
    """
    workers = max(1, min(int(workers), len(items)))
    if workers == 1:
        with cpu_guard():
            return [work(iter(items))]
    take = _shared_queue(items)
    with torch_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="ntk") as pool:
        futures = [pool.submit(lambda: work(take())) for _ in range(workers)]
        return [f.result() for f in futures]
