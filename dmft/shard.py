"""Sample-side state of the DMFT for a range of replica groups: the Monte Carlo paths.

A :class:`Shard` owns the paths of groups g0 .. g1-1 (their targets, labels, histories) and
advances them one step at a time with the Numba kernels of :mod:`dmft.kernels`, given the
weight-side coefficients of those groups; it returns the per-group sums the weight side needs.
``dmft.solve`` uses one shard in-process, or several shards kept resident on Dask workers as
actors (``solve(..., client=...)``): per step only the small coefficient arrays and per-group
sums travel.  Every group draws from its own random stream (``SeedSequence(seed).spawn(G)``),
in a fixed order (z*, label noise, eps0, selection patterns, then eta(t) step by step,
drawn at once in parallel by :func:`dmft.kernels.draw_eta`), so the
numbers do not depend on how groups are spread over shards or threads: a sharded solve equals
the single-process one.
"""
import math
import os

import numpy as np

from . import kernels
from .activations import get_activation
from .errors import ProblemError
from .problem import Problem


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
        self.a = np.ascontiguousarray(pr.a)
        self.lr = pr.eta
        self.sqrt_alpha = math.sqrt(pr.alpha_tot)
        # test-only switch that breaks the solver on purpose (drops the memory term), so that
        # the validation suite can be shown to fail; never set in normal use
        self.mem_scale = 0.0 if os.environ.get("DMFT_TEST_BREAK") == "memory" else 1.0
        self.response = response
        seqs = np.random.SeedSequence(seed).spawn(G)[g0:g1]
        self.rngs = tuple(np.random.default_rng(s) for s in seqs)
        self.zT = np.empty((k, n))
        self.eps0 = np.empty((p, n))           # per-path vectors stored by coordinate
        xi = np.empty(n)
        kernels.draw_inputs(self.rngs, self.bounds, self.zT, xi, self.eps0)
        self.y = pr.target(self.zT.T) + math.sqrt(pr.noise) * xi
        masks = [pr.plan.mask(rng, self.bounds[b + 1] - self.bounds[b], T)
                 for b, rng in enumerate(self.rngs)]
        if not np.all(np.isfinite(self.y)):
            bad = int(np.sum(~np.isfinite(self.y)))
            raise ProblemError("target", f"{pr.target.expr!r} is not finite at {bad} of {n} "
                                         f"Gaussian inputs (e.g. log or sqrt of a negative number)")
        self.mask = np.zeros((0, 0), dtype=np.uint8) if masks[0] is None else \
            np.ascontiguousarray(np.concatenate(masks, axis=1))
        # histories blocked by chunk, (chunk, time, neuron, lane): one chunk's history is
        # one contiguous block, read as a single stream (see dmft.kernels)
        self.chunks, self.group_chunks = chunk_layout(self.bounds)
        shape = (len(self.chunks), max(T, 1), p, kernels.CHUNK)
        self.eta = np.zeros(shape, dtype=np.float32)
        self.kappa = np.zeros(shape, dtype=np.dtype(history))
        if T >= 1:                             # eta(0 .. T-1), in parallel, after z*, y, eps0
            kernels.draw_eta(self.rngs, self.eta, self.chunks, self.group_chunks)
        self.g_prev = np.zeros((p, n))
        self.D_hist = np.zeros((T + 1, n, p, p)) if response == "pathwise" else \
            np.zeros((1, 1, p, p))

    def step(self, t, P_t, B_row, K_prev, c_prev, K_inv_prev, M_t, R_theta=None):
        """Advance the shard's paths to step t (coefficients have a leading axis of the
        shard's groups).  Returns the per-group sums (gg, gk, gz, om2, kk, cw, S_eps, S_eta,
        losses) for Stein, with R_g(t, .) sums in place of (S_eps, S_eta) for pathwise."""
        G, p, k = self.G, self.p, self.k
        gg, gz = np.zeros((G, p, p)), np.zeros((G, p, k))
        gk, om2 = np.zeros((G, t, p, p)), np.zeros((G, p, p))
        kk, cw = np.zeros((G, p, p)), np.zeros((G, max(t - 1, 0), p, p))
        lo = np.zeros((G, 3))
        args = (t, self.code, self.a, self.zT, self.y, self.sqrt_alpha, self.lr, self.eps0,
                self.eta, self.kappa, self.g_prev)
        coef = (P_t, B_row, K_prev, c_prev, K_inv_prev, M_t, self.mask, self.mem_scale)
        if self.response == "stein":
            S_eps, S_eta = np.zeros((G, p, p)), np.zeros((G, t, p, p))
            kernels.step_stein(*args, self.chunks, self.group_chunks, *coef, gg, gk, gz, om2,
                               kk, cw, S_eps, S_eta, lo)
            return gg, gk, gz, om2, kk, cw, S_eps, S_eta, lo
        Rg = np.zeros((G, t + 1, p, p))
        kernels.step_pathwise(*args, self.D_hist, self.chunks, self.group_chunks, *coef,
                              R_theta, gg, gk, gz, om2, kk, cw, Rg, lo)
        return gg, gk, gz, om2, kk, cw, Rg, None, lo
