"""Replica and seed samples of real validation cases, and a simulation for the memory-bias test,
for tests/test_agreement.py: `python tests/data/make_agreement_fixture.py
tests/data/agreement_cases.npz [NAME ...]` (the named entries only, merged into the file).

For each case of CASES, the DMFT is solved and the simulation run at the case's largest d with
the case file's own settings (dmft/cases/*.toml, full mode; the simulation seed is the case's
[simulation] seed), and the per-replica (G, T+1, ...) and per-seed (S, T+1, ...) arrays of M, Q,
train_loss and test_error are stored as ``CASE/dmft/NAME`` and ``CASE/sim/NAME``.  The tests build
Gaussian null laws from their covariances (the correlation structure of real comparisons), so
these only have to be representative.  ``memory_probe/sim/NAME`` is a simulation of PROBE (a
problem whose curves are sensitive to the DMFT's memory term) with many seeds, against which the
test solves the DMFT with and without a 1 % bias of its memory term."""
import os
import sys

import numpy as np

import dmft
from dmft.agreement import OBSERVABLES
from dmft.config import check_config, problem_from_config, read_config
from dmft.validation import CASES as CASE_DIR

CASES = ("erf_student", "ridge_noise", "p4_init", "long_run")
PROBE = dict(target="tanh(2*z1)", p=1, activation="tanh", alpha=1.0, eta=0.8, steps=12)
PROBE_SIM = dict(d=4000, n_seeds=96, seed=4000)


def case_samples(case):
    cfg = read_config(os.path.join(CASE_DIR, case + ".toml"))
    problem = problem_from_config(cfg)
    conf = check_config(cfg, problem=problem, solver={"progress": False},
                        simulation={"progress": False})
    mopts = dict(conf.simulation)
    mopts.pop("d")
    res = dmft.solve(problem, **conf.solver)
    sim = dmft.simulate(problem, d=max(cfg["validation"]["ds"]), **mopts)
    return {**{f"{case}/dmft/{n}": res.replicas[n] for n in OBSERVABLES},
            **{f"{case}/sim/{n}": sim.seeds[n] for n in OBSERVABLES}}


def probe_samples():
    sim = dmft.simulate(dmft.Problem(**PROBE), progress=False, **PROBE_SIM)
    return {f"memory_probe/sim/{n}": sim.seeds[n] for n in OBSERVABLES}


def main(path, names=()):
    out = {}
    if names and os.path.exists(path):
        with np.load(path) as f:
            out = {k: f[k] for k in f.files if k.split("/")[0] not in names}
    for name in names or CASES + ("memory_probe",):
        out.update(probe_samples() if name == "memory_probe" else case_samples(name))
        print(name, "done", flush=True)
    np.savez_compressed(path, **out)


if __name__ == "__main__":
    main(sys.argv[1], tuple(sys.argv[2:]))
