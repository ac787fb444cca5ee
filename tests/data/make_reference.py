"""Reference arrays of the default model (fixed readout, square loss, unconstrained GD), written
by the code of commit 0b3389f (0.2.0: the innovations nu orthonormal on each replica's paths, an
intended change of numbers; the files of 0.1.0, written by eb4b1ac, are retired):
`PYTHONPATH=<checkout of 0b3389f> python tests/data/make_reference.py tests/data/reference_v1_<machine>.npz`.
tests/test_reference.py checks that the same seeds still give bit-identical arrays.

Bit identity holds on one machine and one set of libraries: OpenBLAS picks its kernels by CPU and
Numba compiles for the host CPU, so another CPU moves the last bit of some sums.  Each file
records the fingerprint of the machine that wrote it (:func:`fingerprint`); the test demands bit
identity against the file whose fingerprint is the running machine's (or, failing that, bit
identity with one of the files, else agreement to 1e-12 relative).  Regenerate only for an intended,
documented change of numbers, or add a file for a new machine from the old code."""
import platform
import sys
import numpy as np
import dmft

CASES = {
    "multipass_stein": (dict(target="tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0,
                             eta=0.2, ridge=0.01, noise=0.1, steps=6),
                        dict(n_paths=20_000, seed=1)),
    "multipass_f32": (dict(target="tanh(z1 + He3(z2))", p=2, activation="relu", alpha=3.0,
                           eta=0.2, steps=5),
                      dict(n_paths=20_000, seed=2, history="float32")),
    "onepass": (dict(target="He3(z1) + 0.5*z1", p=2, activation="tanh", alpha=2.0, eta=0.5,
                     steps=5, schedule="one-pass"), dict(n_paths=20_000, seed=3)),
    "onepass_general": (dict(target="He3(z1) + 0.5*z1", p=2, activation="tanh", alpha=2.0,
                             eta=0.5, steps=4, schedule="one-pass"),
                        dict(n_paths=20_000, seed=3, method="general")),
    "pathwise": (dict(target="tanh(2*z1) + 0.3*He2(z2)", p=2, activation="erf", alpha=2.0,
                      eta=0.4, steps=5), dict(n_paths=20_000, seed=4, response="pathwise")),
    "reuse2": (dict(target="He3(z1)", p=1, activation="tanh", alpha=2.0, eta=0.5, steps=5,
                    schedule="reuse-2"), dict(n_paths=20_000, seed=5)),
    "minibatch": (dict(target="z1 + z1*z2", p=3, activation="relu", alpha=2.0, eta=0.3,
                       steps=4, schedule="minibatch-0.5", M0=[[0.1, 0.0], [0.0, 0.2], [0.0, 0.0]],
                       Q0=[[1.0, 0.1, 0.0], [0.1, 1.0, 0.0], [0.0, 0.0, 0.5]]),
                  dict(n_paths=20_000, seed=6)),
}
SIM = (dict(target="tanh(z1 + He3(z2))", p=2, activation="relu", alpha=2.0, eta=0.2,
            ridge=0.01, noise=0.1, steps=4), dict(d=200, n_seeds=3, seed=7, n_jobs=1, n_test=2000))
SIM_ONEPASS = (dict(target="He3(z1)", p=1, activation="tanh", alpha=1.5, eta=0.5, steps=3,
                    schedule="one-pass"), dict(d=150, n_seeds=2, seed=8, n_jobs=1, n_test=1000))


def fingerprint():
    """The CPU model and the versions that decide the last bits: numpy, its BLAS, numba."""
    import numba
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"] \
        if np.lib.NumpyVersion(np.__version__) >= "1.26.0" else {}
    return (f"{cpu} | numpy {np.__version__} | blas {blas.get('name', '?')} "
            f"{blas.get('version', '?')} | numba {numba.__version__}")


def main(path):
    out = {"__fingerprint__": np.array(fingerprint())}
    for name, (pk, sk) in CASES.items():
        r = dmft.solve(dmft.Problem(**pk), progress=False, **sk)
        for f in ("M", "Q", "overlap", "train_loss", "test_error", "C_theta", "R_theta", "C_g",
                  "R_g", "Psi"):
            out[f"{name}/{f}"] = getattr(r, f)
            out[f"{name}/{f}_err"] = getattr(r, f + "_err")
        for f, x in r.replicas.items():
            out[f"{name}/replica_{f}"] = x
    for name, (pk, sk) in (("sim", SIM), ("sim_onepass", SIM_ONEPASS)):
        s = dmft.simulate(dmft.Problem(**pk), progress=False, **sk)
        for f in ("M", "Q", "overlap", "train_loss", "test_error"):
            out[f"{name}/{f}"] = getattr(s, f)
            out[f"{name}/{f}_err"] = getattr(s, f + "_err")
    np.savez_compressed(path, **out)
    print(len(out), "arrays")


if __name__ == "__main__":
    main(sys.argv[1])
