"""Numbers do not move: the same seeds give bit-identical arrays to those stored at commit
eb4b1ac, before the refactors (tests/data/make_reference.py wrote them)."""
import os
import runpy

import numpy as np
import pytest

import dmft

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "data", "reference_v0.npz")
SPEC = runpy.run_path(os.path.join(HERE, "data", "make_reference.py"), run_name="spec")


@pytest.fixture(scope="module")
def ref():
    with np.load(REF) as z:
        return {k: z[k] for k in z.files}


def _check(ref, name, obj, fields):
    for f in fields:
        for suffix in ("", "_err"):
            key = f"{name}/{f}{suffix}"
            np.testing.assert_array_equal(np.asarray(getattr(obj, f + suffix)), ref[key],
                                          err_msg=key)


@pytest.mark.parametrize("name", sorted(SPEC["CASES"]))
def test_dmft_bit_identical(ref, name):
    pk, sk = SPEC["CASES"][name]
    res = dmft.solve(dmft.Problem(**pk), progress=False, **sk)
    _check(ref, name, res, ("M", "Q", "overlap", "train_loss", "C_theta", "R_theta", "C_g",
                            "R_g", "Psi"))
    for f in ("M", "Q", "overlap", "train_loss"):
        np.testing.assert_array_equal(res.replicas[f], ref[f"{name}/replica_{f}"])


@pytest.mark.parametrize("name", ["sim", "sim_onepass"])
def test_simulation_bit_identical(ref, name):
    pk, sk = SPEC["SIM" if name == "sim" else "SIM_ONEPASS"]
    sim = dmft.simulate(dmft.Problem(**pk), progress=False, **sk)
    _check(ref, name, sim, ("M", "Q", "overlap", "train_loss", "test_error"))
