"""Target functions given as small, safe arithmetic expressions.

A target such as ``"tanh(z1 + He3(z2))"`` is a function of the latent Gaussian
coordinates ``z1, z2, ...``.  The string is parsed with :mod:`ast` and checked
node by node against a whitelist, then compiled into a tree of Python closures
that evaluate vectorised with numpy.  User strings are never passed to
``eval``/``exec``/``compile``; anything outside the grammar below raises
:class:`~dmft.errors.ProblemError`.

Grammar:

* numbers (int or float; not bool or complex) and the constants ``pi``, ``e``;
* variables ``z1``, ``z2``, ... (1-based, column ``i - 1`` of the input);
* binary ``+ - * / **`` and unary ``-``, ``+``;
* one-argument calls of ``tanh exp log sqrt abs sign sin cos erf relu sigmoid``
  and the probabilists' Hermite polynomials ``He0`` ... ``He20``.
"""

import ast
import re
import warnings

import numpy as np
import scipy.special

from dmft.errors import ProblemError

__all__ = ["Target", "hermite", "MAX_HERMITE", "MAX_LENGTH", "MAX_DEPTH"]

MAX_HERMITE = 20    # highest Hermite degree accepted in expressions
MAX_LENGTH = 2000   # longest accepted expression, in characters
MAX_DEPTH = 100     # deepest accepted nesting of calls / operators

_FUNCTIONS = {
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sign": np.sign,
    "sin": np.sin,
    "cos": np.cos,
    "erf": scipy.special.erf,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": scipy.special.expit,
}
_CONSTANTS = {"pi": np.float64(np.pi), "e": np.float64(np.e)}
_BINOPS = {
    ast.Add: ("+", np.add),
    ast.Sub: ("-", np.subtract),
    ast.Mult: ("*", np.multiply),
    ast.Div: ("/", np.divide),
    ast.Pow: ("**", np.power),
}
_OP_SYMBOLS = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<",
               ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
               ast.Invert: "~", ast.Not: "not"}
_VARIABLE = re.compile(r"z([1-9][0-9]*)")
_HERMITE = re.compile(r"He(0|[1-9][0-9]*)")

ALLOWED = (
    "allowed are numbers, the variables z1, z2, ..., the constants pi and e, "
    "the operators + - * / ** and unary - +, and one-argument calls of "
    + ", ".join(_FUNCTIONS) + f", He0..He{MAX_HERMITE}"
)


def hermite(n, x):
    """Probabilists' Hermite polynomial He_n evaluated elementwise at ``x``.

    Uses the recurrence He_{n+1}(x) = x He_n(x) - n He_{n-1}(x), with He_0 = 1
    and He_1 = x, so that E[He_m(g) He_n(g)] = n! delta_mn for g ~ N(0, 1).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"hermite degree must be a non-negative integer, got {n!r}")
    x = np.asarray(x, dtype=np.float64)
    prev, cur = np.ones_like(x), x.copy()
    if n == 0:
        return prev
    for k in range(1, n):
        prev, cur = cur, x * cur - k * prev
    return cur


class Target:
    """A target function f(z1, ..., zK) parsed from a whitelisted expression.

    Attributes:
        expr: the expression string, stripped of surrounding whitespace.
        indices: sorted tuple of the (1-based) variable indices used.
        k_used: largest variable index used (0 for a constant expression).
    """

    def __init__(self, expr, field="target"):
        self.field = field
        if not isinstance(expr, str):
            raise ProblemError(field, f"expected an expression string, got {type(expr).__name__}")
        self.expr = expr.strip()
        if not self.expr:
            raise ProblemError(field, f"empty expression; {ALLOWED}")
        if len(self.expr) > MAX_LENGTH:
            raise ProblemError(field, f"expression is {len(self.expr)} characters long "
                                      f"(at most {MAX_LENGTH} allowed)")
        try:
            with warnings.catch_warnings():     # e.g. "invalid decimal literal" in '1e3and'
                warnings.simplefilter("ignore", SyntaxWarning)
                tree = ast.parse(self.expr, mode="eval")
        except SyntaxError as exc:
            where = f" at column {exc.offset}" if exc.offset else ""
            raise ProblemError(field, f"invalid syntax{where} in {self.expr!r} ({exc.msg}); "
                                      f"{ALLOWED}") from None
        except (ValueError, MemoryError, RecursionError) as exc:
            raise ProblemError(field, f"cannot parse {self.expr!r}: {exc}") from None
        used = set()
        self._fn = self._compile(tree.body, used, 0)
        self.indices = tuple(sorted(used))
        self.k_used = max(used, default=0)

    def __call__(self, z):
        """Evaluate on samples ``z`` of shape (n, k), k >= k_used; returns float64 (n,)."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2:
            raise ProblemError(self.field, f"expected z of shape (n, k), got shape {z.shape}")
        if z.shape[1] < self.k_used:
            raise ProblemError(self.field, f"{self.expr!r} uses z{self.k_used} but z has only "
                                           f"{z.shape[1]} column(s)")
        with np.errstate(all="ignore"):
            out = self._fn(z)
        return np.array(np.broadcast_to(out, (z.shape[0],)), dtype=np.float64)

    def __repr__(self):
        return f"Target({self.expr!r})"

    # -- compilation -----------------------------------------------------------------

    def _fail(self, node, what):
        token = ast.get_source_segment(self.expr, node) or type(node).__name__
        raise ProblemError(self.field, f"{what}: {token!r} (in {self.expr!r}); {ALLOWED}")

    def _compile(self, node, used, depth):
        """Check ``node`` against the whitelist and return a closure z -> array."""
        if depth > MAX_DEPTH:
            raise ProblemError(self.field, f"expression nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self._fail(node, "unsupported constant")
            try:
                value = np.float64(value)
            except OverflowError:
                self._fail(node, "number too large")
            return lambda z: value
        if isinstance(node, ast.Name):
            return self._compile_name(node, used)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.USub, ast.UAdd)):
                operand = self._compile(node.operand, used, depth + 1)
                if isinstance(node.op, ast.UAdd):
                    return operand
                return lambda z: np.negative(operand(z))
            self._fail(node, f"unsupported operator {_OP_SYMBOLS.get(type(node.op), '?')!r}")
        if isinstance(node, ast.BinOp):
            return self._compile_binop(node, used, depth)
        if isinstance(node, ast.Call):
            return self._compile_call(node, used, depth)
        self._fail(node, f"unsupported syntax ({type(node).__name__})")

    def _compile_name(self, node, used):
        name = node.id
        if name in _CONSTANTS:
            value = _CONSTANTS[name]
            return lambda z: value
        match = _VARIABLE.fullmatch(name)
        if match is None:
            self._fail(node, "unknown name")
        column = int(match.group(1)) - 1
        used.add(column + 1)
        return lambda z: z[:, column]

    def _compile_binop(self, node, used, depth):
        if type(node.op) not in _BINOPS:
            self._fail(node, f"unsupported operator {_OP_SYMBOLS.get(type(node.op), '?')!r}")
        if isinstance(node.op, ast.Pow):
            base = self._compile(node.left, used, depth + 1)
            exponent = self._compile(node.right, used, depth + 1)
            return lambda z: np.power(base(z), exponent(z))
        # Flatten left-associative chains like a + b - c + ... so that long sums or
        # products do not count as deep nesting (and evaluate without recursion).
        group = (ast.Add, ast.Sub) if isinstance(node.op, (ast.Add, ast.Sub)) else (ast.Mult, ast.Div)
        steps = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, group):
            steps.append((_BINOPS[type(node.op)][1], self._compile(node.right, used, depth + 1)))
            node = node.left
        first = self._compile(node, used, depth + 1)
        steps.reverse()

        def evaluate(z):
            acc = first(z)
            for op, term in steps:
                acc = op(acc, term(z))
            return acc
        return evaluate

    def _compile_call(self, node, used, depth):
        if not isinstance(node.func, ast.Name):
            self._fail(node.func, "unsupported function")
        name = node.func.id
        hermite_match = _HERMITE.fullmatch(name)
        if name in _FUNCTIONS:
            func = _FUNCTIONS[name]
        elif hermite_match and int(hermite_match.group(1)) <= MAX_HERMITE:
            degree = int(hermite_match.group(1))
            func = lambda x: hermite(degree, x)  # noqa: E731
        else:
            self._fail(node.func, "unknown function")
        if node.keywords:
            self._fail(node, f"keyword arguments are not allowed ({name} takes one positional argument)")
        if len(node.args) != 1:
            self._fail(node, f"{name} takes exactly one argument, {len(node.args)} given")
        argument = self._compile(node.args[0], used, depth + 1)
        return lambda z: func(argument(z))
