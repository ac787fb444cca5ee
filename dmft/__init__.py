"""dmft: dynamical mean-field theory of gradient descent in two-layer networks.

Public API: :class:`Problem`, :func:`solve` (DMFT) -> :class:`Result`, :func:`simulate`
(finite-size GD) -> :class:`SimResult`, :func:`compare` -> :class:`Comparison`, :func:`load`,
:class:`ProblemError` (bad input), :class:`DivergenceWarning` and :class:`KernelProjectionWarning`.
The science is specified in THEORY.md (shared with the project).
"""
__version__ = "0.1.0"

from .errors import DivergenceWarning, KernelProjectionWarning, ProblemError  # noqa: E402
from .problem import Problem  # noqa: E402
from .result import Result  # noqa: E402
from .solver import solve  # noqa: E402
from .simulate import SimResult, simulate  # noqa: E402
from .compare import Comparison, compare  # noqa: E402
from .io import load  # noqa: E402
from .learnability import learnability  # noqa: E402

__all__ = ["Problem", "solve", "Result", "simulate", "SimResult", "compare", "Comparison", "load",
           "learnability", "ProblemError", "DivergenceWarning", "KernelProjectionWarning",
           "__version__"]
