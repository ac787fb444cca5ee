"""Connections to Dask: a running scheduler by address, an existing client, or a local
cluster of one-thread worker processes (its HTTP server on a free port, its routine log lines, e.g. a worker
killed at shutdown, silenced), closed on exit."""
import contextlib
import logging

from .errors import ProblemError


@contextlib.contextmanager
def connect(scheduler=None, client=None, n_workers=None):
    """A ``dask.distributed.Client`` for the duration of a ``with`` block.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (e.g. ``tcp://10.0.0.5:8786``); ProblemError on
        ``scheduler`` when it cannot be reached within 10 s.
    client : distributed.Client, optional
        An existing client, yielded as is and left open.
    n_workers : int, optional
        Size of the local cluster started when neither is given (default: one per CPU).

    Yields
    ------
    distributed.Client
        The client.
    """
    if scheduler is not None and client is not None:
        raise ProblemError("scheduler", "give a scheduler address or a client, not both")
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster
    if scheduler is not None:
        try:
            own = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ProblemError("scheduler", f"cannot connect to {scheduler}: {exc}") from None
        with own:
            yield own
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as own:
        yield own
