"""Large arrays whose memory is committed when they are allocated, not on first use.

A fresh array's pages are mapped by the operating system when they are first written: a page
fault per page, paid by whichever code first writes there.  The solver's large buffers are
written a little at a time (one row per step), so left alone their faults fall inside the
steps.  Decisions recorded here (the measurements are in the performance guide, "How the
sample side gets there", and the long-horizon guide):

- The sample side's histories (:mod:`dmft.shard`) come from :func:`touched_zeros`: NumPy's
  zeros (which NumPy advises into 2 MB huge pages on Linux) with one zero written per 4 kB
  page right away, by a small loop over contiguous parts of the array on the solver's threads
  (:mod:`dmft.threads`).  Left to the step kernel, the faults fell in the middle of the first
  steps' work, several times dearer; and memory that a process takes fresh from a virtual
  machine's host faults in nearly twice as fast on two threads as on one.  The histories also
  start on a cache line (64 bytes), so that every chunk's rows are aligned and no 64-byte
  vector load of the step kernel straddles two lines (NumPy's large arrays start 16 bytes into
  a page).
- The weight side's packed rows (:mod:`dmft.weight`) come from :func:`committed_zeros`:
  ``mmap`` with ``MAP_POPULATE``, in 4 kB pages, committed in one call (lazily, each step's
  first touch of its new rows cost a fault per 4 kB, a fifth of the weight side at 400 steps).
  Huge pages are faster once the machine has them free, but their first use in a process that
  finds them fragmented can cost several times more; the weight side keeps the steadier 4 kB
  pages.

Either way the values are zeros: nothing here changes a number.
"""
import mmap

import numpy as np
from numba import njit

from .threads import over_groups

PAGE = 4096                 # bytes per base page
ALIGN = 64                  # bytes: a cache line (one AVX-512 load)
RANGES = 64                 # parts of an array touched, shared among the threads


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
