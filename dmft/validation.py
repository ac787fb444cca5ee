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

Statistics (decisions recorded here).  The verdict of a case is the project's agreement
criterion (:mod:`dmft.agreement`, where every statistical decision is written down) applied to
the DMFT and the simulation at the largest d: one family-wise test over every entry of M, Q
(upper triangle), the train loss and the test error at every step t >= 1, at level
``agreement.LEVEL``, with the power of each case (the smallest relative bias of the DMFT's
dynamics it detects with probability 0.9).  The suite adds one calibration test that combines
the cases' dispersion p-values (``agreement.calibration``), at the same level, and draws its QQ
plot next to the report; the suite passes when every case and the calibration pass, so a correct
solver fails a suite of K cases with probability at most (K + 1) * LEVEL.

The d -> infinity extrapolation mean(d) = c0 + c1/d (weighted least squares over the simulated
d, weights 1/err^2) is kept as a diagnostic, outside the verdict: when a case fails at the
largest d, a c0 that agrees with the DMFT points to a finite-size effect, one that does not to the
DMFT.  It is reported as the Sidak family-wise p-value of its z-scores
(c0 - DMFT) / sqrt(err_c0^2 + err_DMFT^2) (the fit has no samples to bootstrap) and drawn on the
case figure.

Results are written atomically per case (JSON + PNG) and reused when the case file, the mode,
the package version and its source code are unchanged, so an interrupted suite resumes where it stopped.
"""
import glob
import hashlib
import json
import os
import time

import numpy as np
from tqdm.auto import tqdm

from .version import __version__
from .agreement import LEVEL, OBSERVABLES, calibration, entries, normal_equivalent, sidak
from .compare import compare
from .config import check_config, problem_from_config, read_config, validation_table
from .errors import ProblemError
from .io import output_dir, save_figure, write_text
from .simulate import simulate
from .solver import solve


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
    agr = cmp.agreement
    worst = {n: float(np.nanmax(agr.z_normal[n][1:])) for n in OBSERVABLES}
    ext, c0s, ext_max, m = {}, {}, 0.0, 0
    for n in OBSERVABLES:
        means = np.stack([entries(n, getattr(s, n)) for s in sims], axis=-1)[1:]
        errs = np.stack([entries(n, getattr(s, n + "_err")) for s in sims], axis=-1)[1:]
        c0, e0 = fit_c0(ds, means, errs)
        th = entries(n, getattr(res, n))[1:]
        eth = entries(n, getattr(res, n + "_err"))[1:]
        z = normal_equivalent((c0 - th) / np.sqrt(e0 ** 2 + eth ** 2),
                              min(res.n_groups, sims[0].n_seeds) - 1)
        ext[n] = float(np.nanmax(z))
        ext_max, m = max(ext_max, ext[n]), m + int(np.isfinite(z).sum())
        c0s[n] = (c0, e0)
    ok = res.ok and all(s.ok for s in sims) and agr.passed
    signed = np.concatenate([np.sign(agr.z[n][1:]) * agr.z_normal[n][1:] for n in OBSERVABLES],
                            axis=-1).ravel()
    name, entry, step = agr.worst
    summary = {
        "case": os.path.splitext(os.path.basename(path))[0], "description": description,
        "quick": quick, "problem": problem.to_dict(), "ds": ds, "n_seeds": sims[0].n_seeds,
        "n_paths": res.n_paths, "worst_z": worst, "worst_z_all": agr.worst_z,
        "worst": {"observable": name, "entry": [i + 1 for i in entry], "step": step},
        "p_value": agr.p_value, "p_sidak": agr.p_sidak, "level": agr.level,
        "critical_z": agr.critical_z, "power": agr.power, "method": agr.method,
        "n_compared": agr.n_compared, "dispersion_p": agr.dispersion_p,
        "z_normal": [round(float(x), 4) for x in signed[np.isfinite(signed)]],
        "extrapolated_z": ext, "extrapolated_zmax": ext_max, "extrapolated_p": sidak(ext_max, m),
        "passed": bool(ok),
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
    """Run (or resume) every case; write per-case JSON/PNG, summary.json, report.md and the
    calibration QQ plot.

    Parameters
    ----------
    files : list of str
        Case files (:func:`case_files`).
    out : str
        Output folder.
    quick : bool
        Use the cases' ``[validation.quick]`` settings.
    progress : bool
        Progress bar over cases.
    log : callable
        Receives one line per case.

    Returns
    -------
    dict
        The suite's summary (the content of summary.json): ``passed`` (every case and the
        calibration test), ``calibration``, ``cases`` (name -> case summary), ...
    """
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
            log(f"{name}: {'passed' if summary['passed'] else 'FAILED'}  family-wise p "
                f"{summary['p_value']:.3g} (worst |z| {summary['worst_z_all']:.2f}), detects a "
                f"relative bias of {summary['power']:.2g}  "
                f"({summary['runtime_s']['total']:.0f} s)")
    wall = time.perf_counter() - t_start
    return write_report(results, out, quick, wall)


def _git_commit():
    import subprocess
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_report(results, out, quick, wall):
    """Write summary.json, report.md and the calibration QQ plot for the finished cases;
    returns the summary."""
    commit = _git_commit()
    total = sum(r["runtime_s"]["total"] for r in results)
    cal = calibration([r.get("dispersion_p", float("nan")) for r in results])
    K = len(results)
    summary = {"version": __version__, "commit": commit, "quick": quick,
               "passed": all(r["passed"] for r in results) and cal.passed,
               "level": LEVEL, "false_alarm_bound": (K + 1) * LEVEL,
               "calibration": {"p_value": cal.p_value, "stouffer_z": cal.statistic,
                               "n_cases": cal.n_cases, "level": cal.level,
                               "passed": cal.passed},
               "runtime_s": total, "wall_s_this_run": wall,
               "cases": {r["case"]: r for r in results}}
    text = json.dumps(summary, indent=1)
    write_text(os.path.join(out, "summary.json"), text, "out")
    from .plotting import plot_calibration
    ranked = sorted((r for r in results if np.isfinite(r.get("dispersion_p", np.nan))),
                    key=lambda r: r["dispersion_p"])
    plot_calibration(cal, [r["case"] for r in ranked],
                     np.concatenate([np.asarray(r.get("z_normal", []), float) for r in results]),
                     os.path.join(out, "calibration_qq.png"))
    lines = [f"# dmft validation report{' (quick)' if quick else ''}", "",
             f"dmft {__version__}, commit `{commit}`; compute time of all cases {total:.0f} s.",
             "", "DMFT against finite-size GD at the largest d, by the agreement criterion of "
             "`dmft.agreement`: one family-wise test per case over every entry of M, Q, train "
             "loss and test error at every step t >= 1 (m entries x steps), its law taken from "
             "the case's own correlations (Gaussian multiplier bootstrap from the DMFT replicas "
             "and the simulation seeds; Sidak as the bound), z-scores converted to "
             "normal-equivalent ones because both errors are estimated.  A case passes when its "
             f"family-wise p-value exceeds the level {LEVEL:g}.  *Power*: the smallest relative "
             "bias b of the DMFT's change since t = 0 (DMFT(t) + b (DMFT(t) - DMFT(0))) the case "
             "detects with probability 0.9.  The d -> infinity fit c0 + c1/d is a diagnostic, "
             "outside the verdict (Sidak p-value of c0 against the DMFT).", "",
             "| case | d | seeds | paths | worst normal-equivalent \\|z\\| (M, Q, train, test) "
             "| at | m | family-wise p | power | d -> inf p | time (s) | result |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        w, at = r["worst_z"], r["worst"]
        where = at["observable"] + (str(at["entry"]) if at["entry"] else "") + f" t={at['step']}"
        lines.append(
            f"| {r['case']} | {', '.join(map(str, r['ds']))} | {r['n_seeds']} | {r['n_paths']:.0e} "
            f"| {w['M']:.2f}, {w['Q']:.2f}, {w['train_loss']:.2f}, {w['test_error']:.2f} "
            f"| {where} | {r['n_compared']} | {r['p_value']:.3g} | {r['power']:.2g} "
            f"| {r['extrapolated_p']:.3g} | {r['runtime_s']['total']:.0f} "
            f"| {'pass' if r['passed'] else '**FAIL**'} |")
    lines += ["", f"Calibration of the suite: the {cal.n_cases} cases' dispersion p-values "
              "(mean squared normal-equivalent z against its bootstrap law, correlations "
              f"included) combined by Stouffer's Z = {cal.statistic:.2f}, two-sided p-value "
              f"{cal.p_value:.3g} (level {LEVEL:g}): "
              f"{'pass' if cal.passed else '**FAIL**'}; QQ plot `calibration_qq.png`.", "",
              f"Every test above is at level {LEVEL:g}: a correct solver fails this suite of {K} "
              f"cases with probability at most {(K + 1) * LEVEL:.2%}.", "", "Cases:", ""]
    lines += [f"- **{r['case']}**: {r['description']} (`{r['problem']['target']}`, "
              f"{r['problem']['activation']}, p={r['problem']['p']}, alpha={r['problem']['alpha']}, "
              f"eta={r['problem']['eta']}, {r['problem']['steps']} steps, "
              f"{r['problem']['schedule']}); figure `cases/{r['case']}.png`" for r in results]
    lines += ["", f"Overall: {'all cases passed' if summary['passed'] else 'FAILED'}.", ""]
    text = "\n".join(lines)
    write_text(os.path.join(out, "report.md"), text, "out")
    return summary
