"""Group-parallel execution of the sample side on Python threads.

The Numba kernels of :mod:`dmft.kernels` release the GIL (``nogil``) and take a range of
replica groups [g0, g1); :func:`over_groups` hands contiguous ranges of groups to as many
threads as Numba is allowed (``numba.get_num_threads()``, so ``NUMBA_NUM_THREADS`` and
``numba.set_num_threads`` keep their meaning).  Groups never share an output, so the results
do not depend on the number of threads.  (Decision recorded here: a ``prange`` over groups
made Numba compile each kernel three times over - alone, in the parallel loop's body and in
the function that launches it - which cost most of the first run's compile time; a thread pool
costs some ten microseconds per step.)

:func:`one_blas_thread` limits the BLAS libraries to one thread where Python threads (or the
tiny products of the population integrals) are the parallelism.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import scipy.linalg  # noqa: F401  (loads SciPy's BLAS before the controller looks for it)
from threadpoolctl import ThreadpoolController

_POOL = []
_CONTROLLER = []
_LOCK = threading.Lock()


def one_blas_thread():
    """A context manager that runs its block with one BLAS thread (threadpoolctl).

    The controller that finds the BLAS libraries is built once per process:
    ``threadpool_limits`` looks for them again on every call (some 2 ms, paid several times
    per solve), a limit through the cached controller costs some 20 microseconds.

    Returns
    -------
    context manager
        Restores the previous thread counts on exit.
    """
    with _LOCK:
        if not _CONTROLLER:
            _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _pool():
    with _LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                            thread_name_prefix="dmft-sample"))
        return _POOL[0]


def over_groups(fn, G, *args, blocks=4):
    """Call ``fn(g0, g1, *args)`` on contiguous ranges [g0, g1) that cover groups 0 .. G-1,
    on as many threads as Numba is allowed (the calling thread is one of them).

    The groups are cut into ``blocks`` ranges per thread that the threads take in turn as they
    finish (dynamic scheduling): a thread slowed by a neighbour on a shared machine then takes
    fewer, instead of keeping the others waiting (measured on 2 cores at 2e5 x 20: the wait
    for the slower thread went from 27 ms to 12 ms a solve).  With ``blocks=1`` there are as
    many ranges as threads, one call each as a rule.  Which thread runs a group never changes
    its numbers (groups share no output).

    Parameters
    ----------
    fn : callable
        Works on the groups [g0, g1) only (no output shared between groups); a Numba kernel
        compiled with ``nogil=True`` or a function whose heavy work releases the GIL.
    G : int
        Number of groups.
    *args
        Passed on to every call.
    blocks : int
        Ranges per thread (1 for a function with a costly per-call set-up).

    Returns
    -------
    None
    """
    n = max(1, min(numba.get_num_threads(), G))
    if n == 1:
        fn(0, G, *args)
        return
    parts = min(G, n * blocks)
    edges = [(i * G + parts // 2) // parts for i in range(parts + 1)]   # near-equal ranges
    todo = iter(list(zip(edges[:-1], edges[1:])))
    lock = threading.Lock()

    def run():
        while True:
            with lock:
                r = next(todo, None)
            if r is None:
                return
            fn(r[0], r[1], *args)
    futures = [_pool().submit(run) for _ in range(1, n)]
    try:
        run()
    finally:
        for f in futures:
            f.result()
