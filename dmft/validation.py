"""Validation suite: DMFT against finite-size simulations at several d, with a d -> infinity
extrapolation and a report (``dmft validate``).

A case is a TOML config (``dmft/cases/*.toml``, shipped with the package) with the usual ``[problem]``, ``[solver]``,
``[simulation]`` tables and a ``[validation]`` table::

    [validation]
    description = "..."
    ds = [500, 1000, 2000, 4000]          # dimensions simulated
    [validation.quick]                    # overrides for --quick (all optional)
    ds = [250, 500]
    n_seeds = 8
    steps = 4
    n_paths = 100_000

Statistics (decisions recorded here).  For every entry of M, Q (upper triangle), the train loss
and the test error at every step t >= 1:

* z at the largest d: (DMFT - simulation mean) / combined standard error.  Both errors are
  estimated (from 32 replicas and from the seeds, 24 here), so |z| follows a Student t with
  Welch-Satterthwaite degrees of freedom rather than a normal law (with 24 seeds, |z| > 3.5 is
  four times likelier than for a normal deviate); each |z| is converted to the normal deviate
  with the same p-value, and a case needs that worst normal-equivalent |z| <= 3.5.  The raw
  worst |z| is reported too.
* Extrapolation: mean(d) = c0 + c1/d by weighted least squares over the simulated d (weights
  1/err^2, exact for two d), and z_ext = (c0 - DMFT) / sqrt(err_c0^2 + err_DMFT^2).  The case's
  extrapolated deviation is the largest |z_ext| converted to a family-wise significance over
  the m entries compared, sigma_fw = Phi^{-1}(1 - p_fw / 2), p_fw = 1 - (1 - p)^m with p the
  two-sided p-value of the largest |z_ext| (Sidak), so that "within 3 sigma" keeps its meaning
  whatever the number of entries; a case needs sigma_fw <= 3.

Results are written atomically per case (JSON + PNG) and reused when the case file, the mode,
the package version and its source code are unchanged, so an interrupted suite resumes where it stopped.
"""
import glob
import hashlib
import json
import os
import time

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from .version import __version__
from .compare import OBSERVABLES, Z_MAX, compare, entries
from .config import check_config, problem_from_config, read_config, validation_table
from .errors import ProblemError
from .io import output_dir, save_figure, write_text
from .simulate import simulate
from .solver import solve

SIGMA_MAX = 3.0


def fit_c0(ds, means, errs):
    """Weighted least squares of mean(d) = c0 + c1/d over the last axis of means (.., n_d).
    Returns (c0, err_c0); with one d, c0 is that mean."""
    ds = np.asarray(ds, dtype=float)
    if len(ds) == 1:
        return means[..., 0], errs[..., 0]
    X = np.stack([np.ones_like(ds), 1.0 / ds], axis=1)                    # (n_d, 2)
    w = 1.0 / np.maximum(errs, 1e-300) ** 2                               # (.., n_d)
    A = np.einsum("...d,di,dj->...ij", w, X, X)
    b = np.einsum("...d,di,...d->...i", w, X, means)
    cov = np.linalg.inv(A)
    c = np.einsum("...ij,...j->...i", cov, b)
    return c[..., 0], np.sqrt(cov[..., 0, 0])


def normal_equivalent(z, e1, nu1, e2, nu2):
    """|z| of a difference whose two standard errors are themselves estimated (from nu1 + 1
    replicas and nu2 + 1 seeds) follows a Student t with Welch-Satterthwaite degrees of freedom,
    not a normal law; return the normal deviate with the same two-sided p-value."""
    with np.errstate(invalid="ignore", divide="ignore"):
        v1, v2 = e1 ** 2, e2 ** 2
        nu = (v1 + v2) ** 2 / (v1 ** 2 / max(nu1, 1) + v2 ** 2 / max(nu2, 1))
        nu = np.where(np.isfinite(nu) & (nu > 0), nu, 1e6)
        out = stats.norm.isf(stats.t.sf(np.abs(z), nu))
    return np.where(np.isfinite(z), out, np.abs(z))


def family_sigma(zmax, m):
    """Sidak family-wise significance (in sigma) of the largest |z| among m comparisons."""
    if m == 0 or not np.isfinite(zmax):
        return float("inf") if not np.isfinite(zmax) else 0.0
    p = 2 * stats.norm.sf(zmax)
    p_fw = -np.expm1(m * np.log1p(-min(p, 1 - 1e-16)))
    return float(stats.norm.isf(max(p_fw, 1e-300) / 2))


def case_config(cfg, quick=False):
    """The checked settings of a validation case.

    Parameters
    ----------
    cfg : dict
        Tables of a case file (:func:`dmft.config.read_config`).
    quick : bool
        Apply the ``[validation.quick]`` overrides.

    Returns
    -------
    (str, list of int, Config)
        The description, the dimensions simulated and the checked config (quick overrides
        applied: fewer steps, paths and seeds).
    """
    description, ds, q = validation_table(cfg, quick)
    problem = problem_from_config(cfg)
    if "steps" in q:
        problem = problem.replace(steps=min(problem.steps, q["steps"]))
    conf = check_config(cfg, problem=problem, solver={"n_paths": q.get("n_paths"),
                                                      "progress": False},
                        simulation={"n_seeds": q.get("n_seeds"), "progress": False})
    return description, ds, conf


def run_case(path, quick=False):
    """Run one validation case; returns a JSON-able summary (and the objects for the figure)."""
    description, ds, conf = case_config(read_config(path), quick)
    problem = conf.problem
    sopts, mopts = conf.solver, dict(conf.simulation)
    mopts.pop("d")                        # the case runs every d of [validation] ds
    seed = mopts.pop("seed")
    t0 = time.perf_counter()
    res = solve(problem, **sopts)
    t_dmft = time.perf_counter() - t0
    sims, t_sim = [], []
    for i, d in enumerate(ds):
        t0 = time.perf_counter()
        sims.append(simulate(problem, d=d, seed=seed + 1000 * i, **mopts))
        t_sim.append(time.perf_counter() - t0)
    cmp = compare(res, sims[-1])
    worst_raw = {n: float(np.nanmax(np.abs(cmp.z[n][1:]))) for n in OBSERVABLES}
    worst = {n: float(np.nanmax(normal_equivalent(
        cmp.z[n][1:], entries(n, getattr(res, n + "_err"))[1:], res.n_groups - 1,
        entries(n, getattr(sims[-1], n + "_err"))[1:], sims[-1].n_seeds - 1)))
        for n in OBSERVABLES}
    ext, c0s = {}, {}
    zmax, m = 0.0, 0
    for n in OBSERVABLES:
        means = np.stack([entries(n, getattr(s, n)) for s in sims], axis=-1)[1:]
        errs = np.stack([entries(n, getattr(s, n + "_err")) for s in sims], axis=-1)[1:]
        c0, e0 = fit_c0(ds, means, errs)
        th = entries(n, getattr(res, n))[1:]
        eth = entries(n, getattr(res, n + "_err"))[1:]
        z = (c0 - th) / np.sqrt(e0 ** 2 + eth ** 2)
        ext[n] = float(np.nanmax(np.abs(z)))
        zmax, m = max(zmax, ext[n]), m + int(np.isfinite(z).sum())
        c0s[n] = (c0, e0)
    sigma = family_sigma(zmax, m)
    ok = res.ok and all(s.ok for s in sims) and max(worst.values()) <= Z_MAX and sigma <= SIGMA_MAX
    summary = {
        "case": os.path.splitext(os.path.basename(path))[0], "description": description,
        "quick": quick, "problem": problem.to_dict(), "ds": ds, "n_seeds": sims[0].n_seeds,
        "n_paths": res.n_paths, "worst_z": worst, "worst_z_all": max(worst.values()),
        "worst_z_raw": worst_raw, "worst_z_raw_all": max(worst_raw.values()),
        "extrapolated_z": ext, "extrapolated_zmax": zmax, "n_compared": m,
        "extrapolated_sigma": sigma, "passed": bool(ok),
        "status": {"dmft": res.status, "sim": [s.status for s in sims]},
        "runtime_s": {"dmft": t_dmft, "simulations": dict(zip(map(str, ds), t_sim)),
                      "total": t_dmft + sum(t_sim)},
    }
    return summary, cmp, c0s


def _case_figure(cmp, c0s, path):
    """The comparison at the largest d (the compared observables: raw M, Q, losses) with the
    d -> infinity extrapolations as black crosses."""
    from matplotlib.figure import Figure

    from .plotting import M_RAW, QUANTITIES, plot_comparison
    quantities = (M_RAW,) + tuple(q for q in QUANTITIES if q.name in OBSERVABLES)
    fig = plot_comparison(cmp, fig=Figure(figsize=(3.9 * len(quantities), 6.2)),
                          quantities=quantities)
    t = cmp.result.t[1:]
    for ax in fig.axes:
        if ax.get_label() not in c0s:
            continue
        c0, e0 = c0s[ax.get_label()]
        for j in range(c0.shape[1]):
            ax.errorbar(t + 0.3, c0[:, j], yerr=2 * e0[:, j], fmt="x", color="k", ms=4, lw=0.8,
                        label=r"$d \to \infty$ fit" if j == 0 else None)
        ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)


def _fingerprint(path, quick):
    with open(path, "rb") as fh:
        body = fh.read()
    extra = f"|{quick}|{__version__}|{_code_hash()}"
    return hashlib.sha256(body + extra.encode()).hexdigest()[:16]


def _code_hash():
    """Hash of the package's sources: a resumed suite never reuses results of other code."""
    h = hashlib.sha256()
    for f in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "*.py"))):
        with open(f, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


#: the validation cases shipped with the package
CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")


def case_files(cases=None, folder=None):
    """Case files to run: all of ``folder`` (default: the cases shipped with dmft,
    :data:`CASES`) or the named ones (names of cases in the folder, or paths of case files).

    Parameters
    ----------
    cases : str, optional
        Comma-separated names or paths.
    folder : str, optional
        A folder of case files (``*.toml``).

    Returns
    -------
    list of str
        Paths of the case files.
    """
    folder = folder or CASES
    files = sorted(glob.glob(os.path.join(folder, "*.toml")))
    if cases:
        wanted = [c.strip() for c in cases.split(",") if c.strip()]
        by_name = {os.path.splitext(os.path.basename(f))[0]: f for f in files}
        missing = [c for c in wanted if c not in by_name and not os.path.isfile(c)]
        if missing:
            raise ProblemError("cases", f"unknown case {missing[0]!r}; known: "
                                        f"{', '.join(by_name) or '(none in ' + folder + ')'}")
        files = [by_name.get(c, c) for c in wanted]
    if not files:
        raise ProblemError("cases", f"no case files (*.toml) in {folder}")
    return files


def _read_json(path):
    """A finished case's summary, or None when absent or unreadable (then it is recomputed)."""
    try:
        with open(path, encoding="utf-8") as fh:
            out = json.load(fh)
    except (OSError, ValueError):
        return None
    return out if isinstance(out, dict) else None


def run_suite(files, out, quick=False, progress=True, log=print):
    """Run (or resume) every case; write per-case JSON/PNG, summary.json and report.md."""
    for path in files:                  # every case checked (the whole file) before any work
        case_config(read_config(path), quick)
    results, t_start = [], time.perf_counter()
    with output_dir(os.path.join(out, "cases")):      # bad input found late: nothing left
        for path in tqdm(files, desc="validation", unit="case", disable=not progress):
            name = os.path.splitext(os.path.basename(path))[0]
            stem = os.path.join(out, "cases", name)
            fp = _fingerprint(path, quick)
            old = _read_json(stem + ".json")
            if old is not None and old.get("fingerprint") == fp and "passed" in old:
                results.append(old)
                log(f"{name}: reused ({'passed' if old['passed'] else 'FAILED'})")
                continue
            summary, cmp, c0s = run_case(path, quick)
            summary["fingerprint"] = fp
            _case_figure(cmp, c0s, stem + ".png")
            text = json.dumps(summary, indent=1)
            write_text(stem + ".json", text, "out")
            results.append(summary)
            log(f"{name}: {'passed' if summary['passed'] else 'FAILED'}  worst|z| "
                f"{summary['worst_z_all']:.2f}  extrapolated "
                f"{summary['extrapolated_sigma']:.2f} sigma"
                f"  ({summary['runtime_s']['total']:.0f} s)")
    wall = time.perf_counter() - t_start
    write_report(results, out, quick, wall)
    return results


def _git_commit():
    import subprocess
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_report(results, out, quick, wall):
    """Write summary.json and report.md for the finished cases."""
    commit = _git_commit()
    total = sum(r["runtime_s"]["total"] for r in results)
    summary = {"version": __version__, "commit": commit, "quick": quick,
               "passed": all(r["passed"] for r in results), "runtime_s": total,
               "wall_s_this_run": wall, "cases": {r["case"]: r for r in results}}
    text = json.dumps(summary, indent=1)
    write_text(os.path.join(out, "summary.json"), text, "out")
    lines = [f"# dmft validation report{' (quick)' if quick else ''}", "",
             f"dmft {__version__}, commit `{commit}`; compute time of all cases {total:.0f} s.",
             "", "DMFT against finite-size GD: worst |z| over M, Q, train loss and test error at "
             f"every step (largest d), as the normal deviate with the same p-value given that "
             f"both errors are estimated (Student t, Welch-Satterthwaite; pass <= {Z_MAX}), and "
             "in parentheses the raw worst |z|; the d -> infinity extrapolation "
             "mean(d) = c0 + c1/d compared with the DMFT (largest |z|, and its family-wise "
             f"significance over the m entries compared; pass <= {SIGMA_MAX} sigma).", "",
             "| case | d | seeds | paths | worst \\|z\\| (M, Q, train, test) | extrapolated max \\|z\\| "
             "(m) | family-wise sigma | time (s) | result |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        w = r["worst_z"]
        lines.append(
            f"| {r['case']} | {', '.join(map(str, r['ds']))} | {r['n_seeds']} | {r['n_paths']:.0e} "
            f"| {w['M']:.2f}, {w['Q']:.2f}, {w['train_loss']:.2f}, {w['test_error']:.2f} "
            f"({r.get('worst_z_raw_all', float('nan')):.2f}) "
            f"| {r['extrapolated_zmax']:.2f} ({r['n_compared']}) | {r['extrapolated_sigma']:.2f} "
            f"| {r['runtime_s']['total']:.0f} | {'pass' if r['passed'] else '**FAIL**'} |")
    lines += ["", "Cases:", ""]
    lines += [f"- **{r['case']}**: {r['description']} (`{r['problem']['target']}`, "
              f"{r['problem']['activation']}, p={r['problem']['p']}, alpha={r['problem']['alpha']}, "
              f"eta={r['problem']['eta']}, {r['problem']['steps']} steps, "
              f"{r['problem']['schedule']}); figure `cases/{r['case']}.png`" for r in results]
    lines += ["", f"Overall: {'all cases passed' if summary['passed'] else 'FAILED'}.", ""]
    text = "\n".join(lines)
    write_text(os.path.join(out, "report.md"), text, "out")
