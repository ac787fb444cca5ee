"""Exceptions and warnings raised by dmft.

* :class:`ProblemError` (a ``ValueError``): invalid user input, or an output location that
  cannot be written; the message starts with the name of the offending field.
* :class:`DivergenceWarning` (a ``RuntimeWarning``): a solve or a simulation stopped because
  M, Q or the kernels became non-finite or exploded; the result keeps the finished steps and
  says where it stopped (``status``, ``message``, ``steps_completed``).
* :class:`KernelProjectionWarning` (a ``RuntimeWarning``): a covariance kernel estimated by
  Monte Carlo had a negative eigenvalue larger than round-off and was projected back onto the
  positive semi-definite cone; the message gives the step and the size of the correction.
"""


class ProblemError(ValueError):
    """Invalid user input.  The message always starts with the name of the offending field."""

    def __init__(self, field, message):
        if not isinstance(field, str) or not field or not field.isprintable() or \
                field != field.strip():          # e.g. an empty or blank key in a config
            field = repr(field)
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self):           # survives pickling (process pools, Dask workers)
        return (type(self), (self.field, self.detail))


class DivergenceWarning(RuntimeWarning):
    """The dynamics diverged; the result holds the steps completed before the failure."""


class KernelProjectionWarning(RuntimeWarning):
    """A Monte Carlo kernel was not positive semi-definite beyond round-off and was projected."""


#: the dynamics counts as diverged when |C_theta(t, t)| or |M| (the simulator: |Q|) exceeds this
DIVERGENCE = 1e10

#: a negative eigenvalue of a covariance kernel is reported (KernelProjectionWarning) when it
#: exceeds this fraction of the kernel's largest eigenvalue; below it, it is round-off (float64
#: cancellation leaves ~1e-15) and is clipped silently
PSD_RTOL = 1e-12

#: the same for the solver's weight side by history dtype: the float32 history stores the
#: innovations kappa to 6e-8, so the Gram identities behind the provisional innovation of g hold
#: only to about that (float32 round-off, not physics)
PSD_RTOL_HISTORY = {"float64": PSD_RTOL, "float32": 1e-6}


def check_projection(lam_min, scale, what, step, rtol=PSD_RTOL):
    """Warn (KernelProjectionWarning) when clipping the eigenvalue ``lam_min`` of a kernel to
    zero corrects it by more than ``rtol`` of ``scale`` (its largest eigenvalue).  Returns the
    relative correction."""
    import math
    import warnings
    lam_min, scale = float(lam_min), float(scale)
    rel = max(0.0, -lam_min) / scale if scale > 0 else (0.0 if lam_min >= 0 else math.inf)
    if rel > rtol:
        warnings.warn(KernelProjectionWarning(
            f"{what} at step {step} was not positive semi-definite: most negative eigenvalue "
            f"{lam_min:.3g}, {rel:.2e} of the largest ({scale:.3g}); projected onto the "
            f"positive semi-definite cone (negative eigenvalues set to 0)"), stacklevel=3)
    return rel
