"""Files: every file the package writes goes through :func:`atomic_write` (a temporary file
in the same folder, renamed into place), and output folders are checked before any work
(:func:`ensure_dir`).  Datasets are netCDF via xarray; figures PNG (or the extension's format).
"""
import contextlib
import os
import tempfile
import uuid

from .errors import ProblemError


def _reason(exc):
    return exc.strerror or str(exc) or type(exc).__name__


def ensure_dir(folder, field="out"):
    """Create ``folder`` if needed and check that files can be created in it, before any work
    is done; ProblemError on ``field`` otherwise (e.g. ``out: cannot create directory x:
    Permission denied``)."""
    folder = os.fspath(folder) or "."
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ProblemError(field, f"{folder} exists and is not a directory")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ProblemError(field, f"cannot create directory {folder}: {_reason(exc)}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tmp-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ProblemError(field, f"cannot write in directory {folder}: {_reason(exc)}") from None
    return folder


@contextlib.contextmanager
def output_dir(folder, field="out"):
    """:func:`ensure_dir` for the duration of a ``with`` block that writes into ``folder``:
    when the block ends in a ProblemError (bad input found only once the work has started,
    e.g. a target that is not finite on the samples, or an unreachable scheduler), the folders
    this call created are removed again if they are still empty, so that bad input leaves
    nothing behind.

    Parameters
    ----------
    folder : str or path-like
    field : str
        Field named by the ProblemError of a folder that cannot be created or written.

    Yields
    ------
    str
        The folder.
    """
    folder = os.path.abspath(os.fspath(folder) or ".")
    created, parent = [], folder
    while not os.path.exists(parent):
        created.append(parent)
        parent = os.path.dirname(parent)
    try:
        ensure_dir(folder, field)
        yield folder
    except ProblemError:
        for path in created:                   # deepest first
            try:
                os.rmdir(path)
            except OSError:
                break
        raise


def atomic_write(path, write, field="path"):
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it into place:
    readers never see a half-written file, and a failure leaves no debris.  Every file the
    package writes goes through here.  An output that cannot be written (missing permission,
    full disk, a file where a folder should be) raises ProblemError on ``field``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ProblemError(field, f"cannot create directory {folder}: {_reason(exc)}") from None
    ext = os.path.splitext(path)[1]
    tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}{ext}")
    try:      # mode 0o666 less the umask: the file gets the permissions of an ordinary one
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise ProblemError(field, f"cannot write {path}: {_reason(exc)}") from None
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise ProblemError(field, f"cannot write {path}: {_reason(exc)}") from None
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp):
    try:
        os.remove(tmp)
    except OSError:
        pass


def write_text(path, text, field="path"):
    """Write a text file atomically (UTF-8)."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
    return atomic_write(path, write, field)


def write_dataset(ds, path, field="path"):
    """Write ``ds`` to ``path`` as netCDF, atomically."""
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="netcdf4"), field)


def open_dataset(path):
    """Read a whole netCDF file into memory (ProblemError on ``path`` when it is missing or
    unreadable).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    xarray.Dataset
    """
    import xarray as xr
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ProblemError("path", f"no such file: {path}")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds.load()
    except (OSError, ValueError) as exc:
        raise ProblemError("path", f"cannot read {path}: {exc}") from None
    return ds


def save_figure(fig, path, dpi=120):
    """Save a matplotlib figure atomically (format from the extension, PNG by default)."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=_fmt(path)))


def _fmt(path):
    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    return ext or "png"
