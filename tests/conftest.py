import os

os.environ.setdefault("MPLBACKEND", "Agg")


import pytest  # noqa: E402


#: fixtures that make a test slow (a Dask cluster to start, a million-path solve)
SLOW_FIXTURES = {"client", "paper_result"}


def pytest_collection_modifyitems(config, items):
    """Tests that use a slow fixture belong to the slow tier (``make test-fast`` skips it)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def client():
    """One 2-worker Dask LocalCluster (processes, one thread each) shared by the tests."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


#: the paper's case (Dandi et al. 2024): tanh(z1 + He3(z2)), ReLU, p = k = 2, alpha = 3,
#: eta = 0.2, 6 steps
PAPER = dict(target="tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0, eta=0.2, steps=6)


@pytest.fixture(scope="session")
def paper_result():
    """The paper's case solved once per test session with one million paths (seed 0)."""
    import dmft
    return dmft.solve(dmft.Problem(**PAPER), n_paths=1_000_000, seed=0)


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
