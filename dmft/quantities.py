"""The quantities that figures and tables show, declared once: their field, title and entries.

``QUANTITIES`` are the columns of every figure (normalised overlaps, Q, train loss, test
error); :func:`quantities_for` adds those a problem has beyond the paper's model: the class
error (+-1 labels, eq. (7.3)), the second layer a_j(t) (trained readout, eq. (7.4)) and the
error of the refit readout (eqs. (7.10), (7.11); by default with a trained readout, where it
tells what the trained second layer leaves on the table).  :func:`series` reads a quantity's
values and standard errors from a run (a DMFT Result or a SimResult).
"""
from dataclasses import dataclass

__all__ = ["Quantity", "QUANTITIES", "M_RAW", "CLASS_ERROR", "SECOND_LAYER", "REFIT_ERROR",
           "entries", "quantities_for", "series"]


@dataclass(frozen=True)
class Quantity:
    """A column of the figures: a result field, its title and which entries it has.

    Attributes
    ----------
    name : str
        The result field (``M``, ``test_error``, ...).
    title : str
        The column's title.
    entries : {"pk", "pp", "p", ""}
        "pk": the p x k entries, "pp": the upper triangle of a p x p matrix, "p": one per
        hidden unit, "": a scalar per step.
    symbol : str
        The symbol of an entry's label (LaTeX).
    """

    name: str
    title: str
    entries: str
    symbol: str = ""


#: the quantities drawn, in the order of the columns (a new observable is one more line)
QUANTITIES = (
    Quantity("overlap", r"normalised overlap $M_{jr}/\sqrt{Q_{jj}}$", "pk", "m"),
    Quantity("Q", r"Gram matrix $Q_{jl}$", "pp", "Q"),
    Quantity("train_loss", "train loss", ""),
    Quantity("test_error", "test error", ""),
)
#: the raw overlaps (the observable the validation statistics compare)
M_RAW = Quantity("M", r"overlaps $M_{jr}$", "pk", "M")
#: beyond the paper's model (:func:`quantities_for`)
CLASS_ERROR = Quantity("class_error", r"class error $P(y\,\hat y \leq 0)$", "")
SECOND_LAYER = Quantity("a", r"second layer $a_j$", "p", "a")
REFIT_ERROR = Quantity("refit_error", "refit-readout test error", "")


def entries(quantity, problem):
    """The entries of a quantity for a problem (the order of :func:`dmft.compare.entries`).

    Parameters
    ----------
    quantity : Quantity
        The column.
    problem : Problem
        Gives p and k.

    Returns
    -------
    list of (tuple, str)
        (index into the field at one step, label) per entry.
    """
    p, k = problem.p, problem.k
    if quantity.entries == "pk":
        return [((j, r), f"${quantity.symbol}_{{{j + 1}{r + 1}}}$")
                for j in range(p) for r in range(k)]
    if quantity.entries == "pp":
        return [((j, l), f"${quantity.symbol}_{{{j + 1}{l + 1}}}$")
                for j in range(p) for l in range(j, p)]
    if quantity.entries == "p":
        return [((j,), f"${quantity.symbol}_{{{j + 1}}}$") for j in range(p)]
    return [((), "")]


def quantities_for(problem, refit=None):
    """The columns of a figure of ``problem``: ``QUANTITIES``, then the class error when
    the labels are +-1, the second layer when it is trained and the refit error when
    ``refit`` (None: when the readout is trained).

    Parameters
    ----------
    problem : Problem
    refit : bool or None

    Returns
    -------
    tuple of Quantity
    """
    trained = problem.readout == "trained"
    out = QUANTITIES + ((CLASS_ERROR,) if problem.pm_labels else ())
    out += (SECOND_LAYER,) if trained else ()
    return out + ((REFIT_ERROR,) if (trained if refit is None else refit) else ())


def series(run, name, index):
    """Values and standard errors of one entry of a quantity at every step: ``run.NAME`` and
    ``run.NAME_err``, or ``run.refit_error()`` for the refit error.

    Parameters
    ----------
    run : Result or SimResult
    name : str
        A quantity's name.
    index : tuple
        The entry (:func:`entries`).

    Returns
    -------
    (ndarray, ndarray)
    """
    if name == REFIT_ERROR.name:
        y, e = run.refit_error()
    else:
        y, e = getattr(run, name), getattr(run, name + "_err")
    return y[(slice(None),) + index], e[(slice(None),) + index]
