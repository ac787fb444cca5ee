"""Numba compilation as a user meets it: said while it happens, timed apart.

The kernels are compiled on the first run and cached by Numba next to the sources; later runs
(and later processes) load them in a fraction of a second.  :func:`watch` measures the time
spent compiling (Numba's ``numba:compile`` events fire only for a real compilation, not for a
cache load) and calls a notice at the first one, so that the solvers can say "compiling
kernels (first run only)" exactly when it happens and report the compile time apart from the
run's (``Result.timings["compile"]``).  Compilations of other threads of the process during
the watch are counted too (Numba compiles one function at a time).
"""
import sys
from contextlib import contextmanager

import numba
from numba.core import event
from tqdm.auto import tqdm

MESSAGE = "compiling kernels (first run only)"


class _Watch(event.TimingListener):
    def __init__(self, notice):
        super().__init__()
        self._notice = notice

    def on_start(self, ev):
        if self._notice is not None:
            notice, self._notice = self._notice, None
            notice()
        super().on_start(ev)

    @property
    def seconds(self):
        return self.duration if self.done else 0.0


@contextmanager
def watch(notice=None):
    """Within the context, time the Numba compilations of the process.

    Parameters
    ----------
    notice : callable or None
        Called (no arguments) when the first compilation starts.

    Returns
    -------
    context manager
        Yields an object whose ``seconds`` is the time spent compiling so far.
    """
    listener = _Watch(notice)
    with event.install_listener("numba:compile", listener):
        yield listener


@contextmanager
def notice(progress):
    """A notice for :func:`watch` that shows :data:`MESSAGE` on a tqdm line (stderr) until
    the context ends: when ``progress`` is True, or "auto" and stderr is a terminal
    (compiling takes seconds, longer than the "auto" threshold of :mod:`dmft.progress`; a
    captured or redirected stderr gets no transient line).

    Parameters
    ----------
    progress : bool or "auto"
        The user's choice of progress display.

    Returns
    -------
    context manager
        Yields the notice (None when nothing is to be shown).
    """
    if not progress or (progress == "auto" and not _is_terminal(sys.stderr)):
        yield None
        return
    line = []

    def show():
        line.append(tqdm(total=None, desc=MESSAGE, bar_format="{desc}", leave=False))
    try:
        yield show
    finally:
        for bar in line:
            bar.close()


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def compile_for(dispatcher, *args):
    """Compile a Numba ``dispatcher`` for the types of ``args`` (or load it from Numba's
    cache) without running it; nothing when that specialisation is already loaded.

    Parameters
    ----------
    dispatcher : numba dispatcher
        A jitted function.
    *args
        Arguments of a call (only their types matter).

    Returns
    -------
    None
    """
    dispatcher.compile(tuple(numba.typeof(x) for x in args))
