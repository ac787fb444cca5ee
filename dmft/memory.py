"""Large arrays whose memory is committed when they are allocated, not on first use.

A fresh array's pages are mapped by the operating system when they are first written: a page
fault per page, paid by whichever code first writes there.  The solver's large buffers are
written a little at a time (one row per step), so left alone their faults fall inside the
steps, on the threads of the sample side.  Decisions recorded here (measured on a 2-core
virtual machine, Linux 6.18, transparent huge pages on ``madvise``):

- The sample side's histories (:mod:`dmft.shard`) come from :func:`touched_zeros`: NumPy's
  zeros (which NumPy advises into 2 MB huge pages on Linux) with one zero written per 4 kB
  page right away, by a small loop of its own over contiguous parts of the array, on the
  solver's threads.  Left to the step kernel, the first step that wrote a row of every chunk
  paid the whole array's faults in the middle of its work: 16 ms for 64 MB at 2e5 paths x 20
  steps, against 3.5 ms touched at allocation.  Memory that a process takes fresh from a
  virtual machine's host costs far more (1 to 3 s per GiB here, the host's own faults), and
  two threads fault it in nearly twice as fast as one: a 10^6 x 100 solve in a fresh process
  took 8.1 s to 8.7 s with the pages touched on two threads, 10.3 s to 13.0 s on one (three
  fresh processes each, alternated).
- The weight side's packed rows (:mod:`dmft.weight`) come from :func:`committed_zeros`:
  ``mmap`` with ``MAP_POPULATE``, in 4 kB pages.  Committed lazily, each step's first touch of
  its new rows cost a page fault per 4 kB (0.5 ms per step at t = 400, a fifth of the weight
  side); committed in one call, five times less (0.1 s against 0.5 s for 250 MB).

The histories also start on a cache line (64 bytes): every chunk's rows are then aligned, and
no 64-byte vector load of the step kernel straddles two lines (NumPy's large arrays start 16
bytes into a page).  Measured interleaved in one process at 2e5 paths x 20 steps: the step
kernel 3% faster (three runs, 3.3% to 3.7%).

Huge pages are the faster of the two once the machine has them free (14 ms against 82 ms for
250 MB, measured), but their first use in a process that finds them fragmented can cost
several times more (0.6 s for 250 MB, once); the weight side keeps the steadier 4 kB pages.
Either way the values are zeros: nothing here changes a number.
"""
import mmap

import numpy as np
from numba import njit

from .threads import over_groups

PAGE = 4096                 # bytes per base page
ALIGN = 64                  # bytes: a cache line, the unit of a streaming store


def touched_zeros(shape, dtype=np.float64):
    """Zeros of ``shape`` and ``dtype`` whose pages are all mapped before this returns (one
    zero written per 4 kB page, on the threads of :mod:`dmft.threads`), starting on a 64-byte
    boundary.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array.
    dtype : dtype
        Element type.

    Returns
    -------
    numpy.ndarray
        A C-contiguous array of zeros.
    """
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    buf = np.zeros(n * dtype.itemsize + ALIGN, dtype=np.uint8)
    start = -buf.ctypes.data % ALIGN
    x = buf[start:start + n * dtype.itemsize].view(dtype).reshape(shape)
    if n:
        over_groups(_touch, RANGES, buf, RANGES)
    return x


RANGES = 64                 # parts of an array touched, shared among the threads


@njit(cache=True, nogil=True)
def _touch(r0, r1, buf, parts):
    """Write a zero in every 4 kB page of the parts r0 .. r1-1 (of ``parts``) of ``buf``."""
    n = buf.size
    for r in range(r0, r1):
        lo, hi = n * r // parts, n * (r + 1) // parts
        for i in range(-(-lo // PAGE) * PAGE, hi, PAGE):
            buf[i] = 0


def committed_zeros(n):
    """n float64 zeros in fresh anonymous memory whose pages are committed at once (``mmap``
    with ``MAP_POPULATE`` where the platform has it, NumPy's zeros elsewhere), in 4 kB pages.

    Parameters
    ----------
    n : int
        Number of elements.

    Returns
    -------
    numpy.ndarray
        A 1-D float64 array of zeros (a view of the mapping, which lives as long as it does).
    """
    if not hasattr(mmap, "MAP_ANONYMOUS"):             # Windows: NumPy's own zeros
        return np.zeros(n)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    return np.frombuffer(mmap.mmap(-1, max(n, 1) * 8, flags=flags), dtype=np.float64, count=n)
