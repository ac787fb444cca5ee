import os

os.environ.setdefault("MPLBACKEND", "Agg")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def client():
    """One 2-worker Dask LocalCluster (processes, one thread each) shared by the tests."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def scale_memory(monkeypatch):
    """Break the DMFT on purpose, for tests that must show a check can fail:
    ``scale_memory(f)`` multiplies the memory term of every later in-process solve by f (0
    drops it), by scaling the memory coefficients the weight side hands to the sample side
    (``StepCoefficients.B_mem`` and ``c_last``; the field's coefficients are untouched)."""
    from dmft.weight import WeightSide
    original = WeightSide.coefficients

    def apply(factor):
        def coefficients(self, t):
            coef = original(self, t)
            coef.B_mem = coef.B_mem * factor
            coef.c_last = coef.c_last * factor
            return coef
        monkeypatch.setattr(WeightSide, "coefficients", coefficients)
    return apply
