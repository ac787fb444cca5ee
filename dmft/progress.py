"""Progress bars (tqdm): one rule for when ``progress="auto"`` shows one."""
from tqdm.auto import tqdm

#: "auto" shows a bar when a run is expected to take longer than this (seconds)
AUTO_SECONDS = 2.0
#: rough speed of each loop, in the work units its caller counts per second (2-core machine):
#: "dmft" n_paths (T+1)^2 p^2, "one-pass" n_paths (T+1), "simulate" n_seeds n d T
RATES = {"dmft": 1e9, "one-pass": 2.5e8, "simulate": 2.5e9}


def progress_bar(progress, kind, work, **tqdm_args):
    """A tqdm bar (closed by the caller) shown when ``progress`` is True, or when it is "auto"
    and ``work`` units of the loop ``kind`` (see :data:`RATES`) take over :data:`AUTO_SECONDS`.

    Parameters
    ----------
    progress : bool or "auto"
        The user's choice.
    kind : str
        A key of :data:`RATES`.
    work : float
        The work of the run, in the units of ``kind``.
    **tqdm_args
        Passed to tqdm (total, desc, unit).

    Returns
    -------
    tqdm.tqdm
        The bar (disabled when not shown).
    """
    show = progress if progress != "auto" else work > AUTO_SECONDS * RATES[kind]
    return tqdm(disable=not show, leave=False, **tqdm_args)
