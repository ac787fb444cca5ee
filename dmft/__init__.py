"""dmft: dynamical mean-field theory of gradient descent in two-layer networks.

Public API: :class:`Problem`, :func:`solve` (DMFT) -> :class:`Result`, :func:`simulate`
(finite-size GD) -> :class:`SimResult`, :func:`compare` -> :class:`Comparison`, :func:`load`,
:class:`ProblemError` (bad input), :class:`DivergenceWarning` and :class:`KernelProjectionWarning`.
The science (conventions, equations, decisions) is documented in docs/theory/, whose
numbered equations the docstrings cite as eq. (S.N).
"""
from .version import __version__
from .errors import DivergenceWarning, KernelProjectionWarning, ProblemError
from .problem import Problem
from .result import Result
from .solver import solve
from .simulate import SimResult, simulate
from .compare import Comparison, compare
from .result import load
from .learnability import learnability

__all__ = ["Problem", "solve", "Result", "simulate", "SimResult", "compare", "Comparison", "load",
           "learnability", "ProblemError", "DivergenceWarning", "KernelProjectionWarning",
           "__version__"]
