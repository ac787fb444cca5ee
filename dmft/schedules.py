"""Data-reuse schedules (docs: theory section 4): which samples GD uses at each step.

Accepted forms of ``Problem(schedule=...)``:

==================  ===========================================================================
``"multi-pass"``    one data set of alpha*d samples, the full batch used at every step (default)
``"one-pass"``      a fresh batch of alpha*d samples at every step, each sample used once
``"reuse-R"``       a fresh batch of alpha*d samples every R steps, each used for R consecutive
                    steps (``"reuse-1"`` is one-pass); e.g. ``"reuse-2"``
``"minibatch-B"``   mini-batch SGD over one data set of alpha*d samples: each step uses a fraction
                    B of it, epochs of 1/B steps (1/B an integer) with the data reshuffled every
                    epoch; e.g. ``"minibatch-0.25"``
==================  ===========================================================================

So ``alpha`` is the size (over d) of the data set for multi-pass and mini-batch SGD, and of each
fresh batch for one-pass and reuse.  In the DMFT a sample carries a selection pattern s(t) in
{0, 1} drawn from the schedule's law, the gradient g is replaced by s(t) g(t) and alpha by
``alpha_tot`` = (size of all the data ever used) / d.
"""
import re
from dataclasses import dataclass

import numpy as np

from .errors import ProblemError

_FORMS = ('"multi-pass", "one-pass", "reuse-R" (R a positive integer) or "minibatch-B" '
          '(0 < B <= 1, 1/B an integer)')


@dataclass(frozen=True)
class Schedule:
    kind: str          # "multi-pass", "reuse" (one-pass is reuse with r = 1), "minibatch"
    r: int = 1         # steps per batch (reuse)
    b: float = 1.0     # batch fraction (minibatch)

    @property
    def name(self):
        if self.kind == "multi-pass":
            return "multi-pass"
        if self.kind == "reuse":
            return "one-pass" if self.r == 1 else f"reuse-{self.r}"
        return f"minibatch-{self.b:g}"

    @property
    def one_pass(self):
        return self.kind == "reuse" and self.r == 1

    def n_batches(self, T):
        """Number of distinct batches used over steps 0..T."""
        return -(-(T + 1) // self.r) if self.kind == "reuse" else 1

    def alpha_tot(self, alpha, T):
        """Size over d of all the data used over steps 0..T."""
        return alpha * self.n_batches(T)

    def steps_per_epoch(self):
        """Steps per epoch of mini-batch SGD (1/B); 1 otherwise."""
        return int(round(1.0 / self.b)) if self.kind == "minibatch" else 1

    def mask(self, rng, N, T):
        """Selection patterns s(t) of N samples drawn from the schedule's law: uint8 (T+1, N),
        or None for multi-pass (s = 1)."""
        if self.kind == "multi-pass":
            return None
        s = np.zeros((T + 1, N), dtype=np.uint8)
        if self.kind == "reuse":
            batch = rng.integers(0, self.n_batches(T), size=N)
            for t in range(T + 1):
                s[t] = batch == t // self.r
            return s
        m = self.steps_per_epoch()
        for start in range(0, T + 1, m):                       # one step per epoch per sample
            slot = start + rng.integers(0, m, size=N)
            for t in range(start, min(start + m, T + 1)):
                s[t] = slot == t
        return s

    def batches(self, rng, n, T):
        """For the simulator: per step t, (data-set id, index array or None for all) of the
        samples used.  Data-set id changes when a fresh batch of n samples must be drawn."""
        plan = []
        if self.kind == "multi-pass":
            return [(0, None)] * (T + 1)
        if self.kind == "reuse":
            return [(t // self.r, None) for t in range(T + 1)]
        m = self.steps_per_epoch()
        size = n // m
        for start in range(0, T + 1, m):
            perm = rng.permutation(n)
            for j in range(m):
                if start + j <= T:
                    plan.append((0, perm[j * size:(j + 1) * size] if j < m - 1
                                 else perm[j * size:]))
        return plan


def parse_schedule(value, field="schedule"):
    """Parse a schedule string (see module docstring) into a :class:`Schedule`."""
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, str):
        raise ProblemError(field, f"expected a string: {_FORMS}; got {value!r}")
    v = value.strip().lower()
    if v in ("multi-pass", "multipass", "full-batch"):
        return Schedule("multi-pass")
    if v in ("one-pass", "onepass"):
        return Schedule("reuse", r=1)
    m = re.fullmatch(r"reuse-(\d+)", v)
    if m:
        r = int(m.group(1))
        if r < 1:
            raise ProblemError(field, f"reuse count must be >= 1 in {value!r}")
        return Schedule("reuse", r=r)
    m = re.fullmatch(r"minibatch-([0-9.eE+-]+)", v)
    if m:
        try:
            b = float(m.group(1))
        except ValueError:
            raise ProblemError(field, f"bad batch fraction in {value!r}") from None
        if not (0 < b <= 1) or abs(1 / b - round(1 / b)) > 1e-9:
            raise ProblemError(field, f"batch fraction must be 1/m for an integer m >= 1, got {b}")
        return Schedule("minibatch", b=1.0 / round(1 / b)) if b < 1 else Schedule("multi-pass")
    raise ProblemError(field, f"unknown schedule {value!r}; use {_FORMS}")


__all__ = ["Schedule", "parse_schedule"]
