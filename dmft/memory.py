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
- A finished solve hands its histories back (:func:`recycle`), and the next solve of the same
  process takes them (:func:`history_array`) instead of fresh memory: their pages are mapped
  already (on this virtual machine fresh memory faults in at 3 to 10 GB/s, a tenth to a third
  of a 2e5 x 20 solve; a sweep or a notebook solves many times in one process).  At most
  :data:`SPARE_BYTES` are kept (the oldest dropped first), so a process holds no more than
  that between solves, and it frees them before it takes fresh memory (so the memory check of
  :mod:`dmft.checks` counts them as available); a larger history is freed as before.  A
  reused array holds the previous solve's values: its owner writes every element it later
  reads (the step kernel writes kappa(t-1) at step t before any read, the draws fill nu), and
  a test solves with spare memory full of NaN to check it.

The values read are the same either way: nothing here changes a number.
"""
import mmap
import sys
import threading

import numpy as np
from numba import njit

from .threads import over_groups

PAGE = 4096                 # bytes per base page
ALIGN = 64                  # bytes: a cache line (one AVX-512 load)
RANGES = 64                 # parts of an array touched, shared among the threads
#: The most bytes of finished solves' histories a process keeps for its next solve.
SPARE_BYTES = 512 * 2**20

_SPARE = []                 # owner buffers (uint8) handed back by recycle, oldest first
_SPARE_LOCK = threading.Lock()


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
    if n:
        over_groups(_touch, RANGES, buf, RANGES)
    return _aligned_view(buf, shape, dtype)


def _aligned_view(buf, shape, dtype):
    """The array of ``shape`` and ``dtype`` in the bytes ``buf`` (uint8) from its first
    64-byte boundary on (``buf`` holds ALIGN bytes more than the array)."""
    start = -buf.ctypes.data % ALIGN
    return buf[start:start + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)


def history_array(shape, dtype=np.float64):
    """An array of ``shape`` and ``dtype``, C-contiguous, on a 64-byte boundary, every page
    mapped: memory handed back by an earlier solve of this process (:func:`recycle`) when a
    large enough block is spare (the smallest such), whose values are then that solve's;
    otherwise the spare blocks are freed and the array is :func:`touched_zeros`, so that a
    process never holds idle spares while it takes fresh memory.  Its owner must write every
    element before reading it.

    Parameters
    ----------
    shape, dtype : tuple of int, dtype
        As for :func:`touched_zeros`.

    Returns
    -------
    numpy.ndarray
        The array (values unspecified).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    with _SPARE_LOCK:
        fits = [i for i, b in enumerate(_SPARE) if b.nbytes >= nbytes + ALIGN]
        buf = _SPARE.pop(min(fits, key=lambda i: _SPARE[i].nbytes)) if fits else None
        if buf is None:        # fresh memory: the spares (too small) are freed first
            _SPARE.clear()
    return touched_zeros(shape, dtype) if buf is None else _aligned_view(buf, shape, dtype)


def recycle(arrays):
    """Keep the memory of the arrays of the list ``arrays`` (from :func:`history_array` or
    :func:`touched_zeros`) for a later :func:`history_array` of this process; the list is
    emptied.  Memory that something else still refers to (a view of the array, kept
    elsewhere) is left to the garbage collector, as is one larger than :data:`SPARE_BYTES`;
    the oldest spare memory goes first when the spares would exceed it.

    Parameters
    ----------
    arrays : list of numpy.ndarray
        Emptied: the caller's last references to the arrays.

    Returns
    -------
    None
    """
    while arrays:
        buf = arrays.pop().base
        # the only references left: ``buf`` and getrefcount's argument
        if not (isinstance(buf, np.ndarray) and buf.base is None and buf.dtype == np.uint8
                and buf.nbytes <= SPARE_BYTES and sys.getrefcount(buf) == 2):
            continue
        with _SPARE_LOCK:
            _SPARE.append(buf)
            while sum(b.nbytes for b in _SPARE) > SPARE_BYTES:
                _SPARE.pop(0)


def spare_bytes():
    """The memory this process keeps for its next solve.

    Returns
    -------
    int
        Bytes handed back by finished solves and not yet taken again.
    """
    with _SPARE_LOCK:
        return sum(b.nbytes for b in _SPARE)


def release_spare():
    """Free the memory this process keeps for its next solve (it goes back to the system),
    e.g. before a large computation of another kind; the next solve then takes fresh memory.

    Returns
    -------
    None
    """
    with _SPARE_LOCK:
        _SPARE.clear()


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
