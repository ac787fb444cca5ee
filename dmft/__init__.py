"""dmft: dynamical mean-field theory of gradient descent in two-layer networks.

Public API: :class:`Problem`, :func:`solve`, :class:`Result`, :func:`load`,
:class:`ProblemError`.  The science is specified in THEORY.md (shared with the project).
"""
__version__ = "0.1.0"

from .errors import NumericalError, ProblemError  # noqa: E402
from .problem import Problem  # noqa: E402
from .result import Result  # noqa: E402
from .solver import solve  # noqa: E402
from .io import load  # noqa: E402

__all__ = ["Problem", "solve", "Result", "load", "ProblemError", "NumericalError", "__version__"]
