"""The random inputs of the sample side's paths, drawn with NumPy.

Every replica group b draws from its own generator, in a fixed order: z* (``standard_normal
((n_b, k))``), the label noise (``standard_normal(n_b)``), eps0 (``standard_normal((p,
n_b))``), the selection patterns (:meth:`dmft.schedules.Plan.mask`), then the innovations nu(t)
step by step, chunk by chunk and neuron by neuron (so the first steps' numbers do not depend on
the horizon).  Groups are drawn in parallel (:func:`dmft.threads.over_groups`; NumPy releases
the GIL while it fills an array), so the numbers depend neither on the number of threads nor
on how groups are spread over shards.
"""
import numpy as np

from .threads import over_groups


def draw_inputs(rngs, bounds, k, p):
    """Each path's z* (k, N), label-noise normal (N,) and eps0 (p, N), N = ``bounds[-1]``,
    group b = paths ``bounds[b]`` .. ``bounds[b+1]-1`` drawn from ``rngs[b]``.

    Parameters
    ----------
    rngs : sequence of numpy.random.Generator
        One generator per group.
    bounds : ndarray (G+1,)
        Group boundaries.
    k, p : int
        Target directions and student width.

    Returns
    -------
    tuple of ndarray
        ``zT`` (k, N), ``xi`` (N,), ``eps0`` (p, N), stored by coordinate.
    """
    n = int(bounds[-1])
    zT, xi, eps0 = np.empty((k, n)), np.empty(n), np.empty((p, n))

    def work(g0, g1):
        for b in range(g0, g1):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            zT[:, lo:hi] = rngs[b].standard_normal((hi - lo, k)).T
            xi[lo:hi] = rngs[b].standard_normal(hi - lo)
            eps0[:, lo:hi] = rngs[b].standard_normal((p, hi - lo))
    over_groups(work, len(rngs))
    return zT, xi, eps0


def draw_nu(rngs, nu, chunks, group_chunks):
    """Fill the innovations nu(t) of every path and step (``nu`` (n_chunks, T, p, CHUNK),
    float32, blocked by chunk as in :mod:`dmft.kernels`): drawn in float64 and rounded (a
    relative change below 6e-8).

    Parameters
    ----------
    rngs : sequence of numpy.random.Generator
        One generator per group, after the draws of :func:`draw_inputs` and the masks.
    nu : ndarray (n_chunks, T, p, CHUNK)
        Filled in place (lanes beyond a chunk's width are left untouched).
    chunks, group_chunks : ndarray
        The chunk layout (:func:`dmft.shard.chunk_layout`).

    Returns
    -------
    None
    """
    T, p, width = nu.shape[1], nu.shape[2], nu.shape[3]

    def work(g0, g1):
        for b in range(g0, g1):
            c0, c1 = int(group_chunks[b]), int(group_chunks[b + 1])
            w = chunks[c0:c1, 1]
            full = int(np.argmin(w == width)) if (w != width).any() else c1 - c0
            buf = np.empty(int(w.sum()) * p)
            for t in range(T):
                rngs[b].standard_normal(out=buf)
                nu[c0:c0 + full, t] = buf[:full * p * width].reshape(full, p, width)
                off = full * p * width
                for c in range(c0 + full, c1):          # a group's last, narrower chunk
                    nw = int(chunks[c, 1])
                    nu[c, t, :, :nw] = buf[off:off + p * nw].reshape(p, nw)
                    off += p * nw
    over_groups(work, len(rngs))
