"""Sample-side state of the DMFT for a range of replica groups: the Monte Carlo paths.

A :class:`Shard` owns the paths of groups g0 .. g1-1 (their targets, labels, histories) and
advances them one step at a time with the Numba kernels of :mod:`dmft.kernels`, given the
weight-side coefficients of those groups; it returns the per-group sums the weight side needs.
``dmft.solve`` uses one shard in-process, or several shards kept resident on Dask workers as
actors (``solve(..., client=...)``): per step only the small coefficient arrays and per-group
sums travel.  Every group draws from its own random stream (``SeedSequence(seed).spawn(G)``),
in a fixed order (:mod:`dmft.draws`), so the numbers do not depend on how groups are spread
over shards or threads: a sharded solve equals the single-process one.  The kernels run one
range of groups per thread (:mod:`dmft.threads`).
"""
import math
from dataclasses import dataclass

import numpy as np

from . import compilation, kernels
from .activations import get_activation
from .beyond import problem_codes
from .draws import draw_inputs, draw_nu, orthonormal_nu
from .memory import history_array, recycle
from .problem import Problem
from .threads import over_groups


def group_bounds(N, G):
    """Start indices of the G contiguous replica groups of N paths (length G+1)."""
    return np.linspace(0, N, G + 1).round().astype(np.int64)


def chunk_layout(bounds, size=kernels.CHUNK):
    """Split each group [bounds[b], bounds[b+1]) into chunks of at most ``size`` paths.

    Returns ``chunks`` (n_chunks, 2): first path and width of each chunk, and
    ``group_chunks`` (G+1,): chunks group_chunks[b] .. group_chunks[b+1]-1 belong to group b."""
    chunks, group_chunks = [], [0]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        chunks += [(i0, min(size, hi - i0)) for i0 in range(lo, hi, size)]
        group_chunks.append(len(chunks))
    return np.array(chunks, dtype=np.int64).reshape(-1, 2), np.array(group_chunks, np.int64)


@dataclass
class StepCoefficients:
    """Weight-side coefficients of step t for the shard's groups (leading axis G).

    ``P_t`` (G, p, p) P(t); ``B_row`` (G, t, p, p) B(t, v), v < t, multiplying nu(v) in the
    field omega(t); ``B_mem`` (G, t, p, p) the same B(t, v) multiplying kappa(v) in the memory
    term and ``c_last`` (G, p) the coefficient of -r(t-1) in it (the learning rate); ``K_prev``
    (G, t-1, p, p) K(t-1, v) and ``c_prev`` (G, p, t-2, p), ``K_inv_prev`` (G, p, p) the
    re-orthogonalisation and whitening of r(t-2) (see :mod:`dmft.kernels`); ``M_t`` (G, p, k);
    ``R_theta`` (G, T+1, T+1, p, p) or None (pathwise estimator only); ``a_t`` (G, p) the
    second layer a(t) of a trained readout (eq. (7.5)), None for a fixed one."""

    P_t: np.ndarray
    B_row: np.ndarray
    B_mem: np.ndarray
    c_last: np.ndarray
    K_prev: np.ndarray
    c_prev: np.ndarray
    K_inv_prev: np.ndarray
    M_t: np.ndarray
    R_theta: object = None
    a_t: object = None

    def groups(self, g0, g1):
        """The coefficients of groups g0 .. g1-1."""
        sl = slice(g0, g1)
        return StepCoefficients(*(None if x is None else x[sl] for x in (
            self.P_t, self.B_row, self.B_mem, self.c_last, self.K_prev, self.c_prev,
            self.K_inv_prev, self.M_t, self.R_theta, self.a_t)))


@dataclass
class StepSums:
    """Per-group Monte Carlo sums of one step over the groups' paths (leading axis G; the
    caller divides by the group sizes).

    ``gg`` sum g(t) g(t)^T (G, p, p); ``gk`` sum g(t) kappa(v)^T, v < t (G, p, t, p:
    ``gk[b, j, v, l]``, the layout of the weight side's rows; kappa(t-1) still raw); ``gz``
    sum g(t) z*^T (G, p, k); ``om2`` sum omega(t) omega(t)^T; ``kk`` sum r(t-1) r(t-1)^T;
    ``cw`` sum r(t-1) kappa(w)^T, w < t-1 (G, p, t-1, p); ``losses`` (G, 3): sum of s * train
    loss, of test loss, of s (selected paths).  Stein estimator: ``S_eps`` sum g(t) eps0^T
    and ``S_nu`` sum g(t) nu(v)^T, v < t (G, p, t, p).  Pathwise estimator: ``R_g`` sum of
    dg(t)/domega(u), u <= t (G, t+1, p, p).  ``la`` sum s(t) l' sigma(h(t)) (G, p), for a
    trained readout (eq. (7.5); zero for a fixed one)."""

    gg: np.ndarray
    gk: np.ndarray
    gz: np.ndarray
    om2: np.ndarray
    kk: np.ndarray
    cw: np.ndarray
    losses: np.ndarray
    la: np.ndarray = None
    S_eps: object = None
    S_nu: object = None
    R_g: object = None

    @classmethod
    def join(cls, parts):
        """Concatenate the sums of consecutive groups (shards) along the group axis (one
        shard's sums are returned as they are)."""
        if len(parts) == 1:
            return parts[0]
        return cls(**{f: None if getattr(parts[0], f) is None else
                      np.concatenate([getattr(x, f) for x in parts], axis=0)
                      for f in cls.__dataclass_fields__})


class Shard:
    """Paths of groups [g0, g1) of a solve with N paths in G groups (see module docstring)."""

    def __init__(self, problem_dict, seed, N, G, g0, g1, response, history="float64"):
        pr = Problem.from_dict(problem_dict)
        self.p, self.k, self.T = pr.p, pr.k, pr.steps
        p, k, T = self.p, self.k, self.T
        gb = group_bounds(N, G)
        self.bounds = gb[g0:g1 + 1] - gb[g0]
        self.counts = np.diff(self.bounds).astype(np.float64)
        n = int(self.bounds[-1])
        self.n, self.G = n, g1 - g0
        self.code = get_activation(pr.activation).code
        self.loss, self.trained, _ = problem_codes(pr)
        self.a = np.ascontiguousarray(np.broadcast_to(pr.a, (g1 - g0, pr.p)))   # fixed readout
        self.sqrt_alpha = math.sqrt(pr.alpha_tot)
        self.response = response
        seqs = np.random.SeedSequence(seed).spawn(G)[g0:g1]
        self.rngs = tuple(np.random.default_rng(s) for s in seqs)
        # per-path vectors stored by coordinate, one block (dmft.memory): z*, the label
        # noise, eps0 (drawn), g (zeroed)
        self.paths = history_array((k + 1 + 2 * p, n))
        self.zT, xi, self.eps0 = draw_inputs(self.rngs, self.bounds, k, p,
                                             out=self.paths[:k + 1 + p])
        self.g_prev = self.paths[k + 1 + p:]
        self.g_prev[:] = 0.0
        self.y = pr.labels(self.zT.T, xi)
        masks = [pr.plan.mask(rng, self.bounds[b + 1] - self.bounds[b], T)
                 for b, rng in enumerate(self.rngs)]
        self.mask = np.zeros((0, 0), dtype=np.uint8) if masks[0] is None else \
            np.ascontiguousarray(np.concatenate(masks, axis=1))
        # histories blocked by chunk, (chunk, time, neuron, lane): one chunk's history is
        # one contiguous block, read as a single stream (see dmft.kernels)
        self.chunks, self.group_chunks = chunk_layout(self.bounds)
        shape = (len(self.chunks), max(T, 1), p, kernels.CHUNK)
        # pages mapped now, memory of an earlier solve if spare (dmft.memory): the draws
        # fill nu's lanes, the step kernel writes each kappa row before reading it; the
        # lanes past a chunk's width are never read, and are zeroed
        self.nu = history_array(shape, np.float32)
        if T >= 1:                             # nu(0 .. T-1), in parallel, after z*, y, eps0
            draw_nu(self.rngs, self.nu, self.chunks, self.group_chunks)
            orthonormal_nu(self.nu, self.chunks, self.group_chunks, self.bounds, self.zT, xi,
                           self.eps0)
        # kappa after the orthonormalisation, whose work arrays it would otherwise add to
        # the peak memory (measured at 2000 steps: 5.2 GB against 4.3 GB)
        self.kappa = history_array(shape, np.dtype(history))
        for c in np.flatnonzero(self.chunks[:, 1] < kernels.CHUNK):
            for x in (self.nu, self.kappa):
                x[c, :, :, self.chunks[c, 1]:] = 0
        self.D_hist = np.zeros((T + 1, n, p, p)) if response == "pathwise" else None
        self.compiled = False

    def _call(self, t, coef):
        """The arguments of :func:`dmft.kernels.step` for step t after the range of groups,
        and the :class:`StepSums` it fills.  Every call of an estimator passes the same types
        (None for the other estimator's arrays): one compiled specialisation per estimator and
        history dtype, each compiled only when used."""
        G, p, k = self.G, self.p, self.k
        pathwise = self.response == "pathwise"
        sums = StepSums(gg=np.zeros((G, p, p)), gk=np.zeros((G, p, t, p)),
                        gz=np.zeros((G, p, k)), om2=np.zeros((G, p, p)), kk=np.zeros((G, p, p)),
                        cw=np.zeros((G, p, max(t - 1, 0), p)), losses=np.zeros((G, 3)),
                        la=np.zeros((G, p)))
        c = tuple(np.ascontiguousarray(x, dtype=np.float64) for x in (
            coef.P_t, coef.B_row, coef.B_mem, coef.c_last, coef.K_prev, coef.c_prev,
            coef.K_inv_prev, coef.M_t))
        a = self.a if coef.a_t is None else np.ascontiguousarray(coef.a_t, dtype=np.float64)
        args = (t, self.code, self.loss, self.trained, a, self.zT, self.y, self.sqrt_alpha,
                self.eps0, self.nu, self.kappa, self.g_prev, self.chunks, self.group_chunks, *c,
                self.mask, sums.gg, sums.gk, sums.gz, sums.om2, sums.kk, sums.cw, sums.losses,
                sums.la)
        if pathwise:
            sums.R_g = np.zeros((G, t + 1, p, p))
            R_theta = np.ascontiguousarray(coef.R_theta, dtype=np.float64)
            return (*args, None, None, self.D_hist, R_theta, sums.R_g), sums
        sums.S_eps, sums.S_nu = np.zeros((G, p, p)), np.zeros((G, p, t, p))
        return (*args, sums.S_eps, sums.S_nu, None, None, None), sums

    def compile(self, notice=None):
        """Compile the step kernel for this shard's array types (or load it from Numba's
        cache), in the calling process and thread, before any step.

        Parameters
        ----------
        notice : callable or None
            Called when a compilation starts (see :func:`dmft.compilation.watch`).

        Returns
        -------
        float
            Seconds spent compiling (0 when the kernel was loaded).
        """
        G, p, k = self.G, self.p, self.k
        zero = np.zeros((G, 0, p, p))
        coef = StepCoefficients(
            P_t=np.zeros((G, p, p)), B_row=zero, B_mem=zero, c_last=np.zeros((G, p)),
            K_prev=zero, c_prev=zero, K_inv_prev=np.zeros((G, p, p)), M_t=np.zeros((G, p, k)),
            R_theta=np.zeros((G, 1, 1, p, p)))
        args, _ = self._call(0, coef)
        with compilation.watch(notice) as w:
            compilation.compile_for(kernels.step, 0, G, *args)
        self.compiled = True
        return w.seconds

    def close(self):
        """Hand the memory of the histories and of the per-path vectors to the next solve of
        this process (:func:`dmft.memory.recycle`); the shard cannot step afterwards."""
        arrays = [self.nu, self.kappa, self.paths]
        self.nu = self.kappa = self.paths = self.zT = self.eps0 = self.g_prev = None
        recycle(arrays)

    def step(self, t, coef):
        """Advance the shard's paths to step t given the :class:`StepCoefficients` of its
        groups; returns their :class:`StepSums`."""
        if not self.compiled:              # compiled here, before the threads start
            self.compile()
        args, sums = self._call(t, coef)
        over_groups(kernels.step, self.G, *args)
        return sums
