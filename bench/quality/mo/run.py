"""Runner for the extra problems: the shared harness plus our problems and adapters.

    python bench/quality/mo/run.py run --optimizers optserve tpe nsga2 random_feasible \
        --problems branincurrin branincurrin_lc branin_cm --seeds 10 --budgets 30 80 \
        --workers 1 --out bench/quality/mo/results
    python bench/quality/mo/run.py report --results bench/quality/mo/results \
        --out bench/quality/mo/results/tables.md

At import (so also in the harness's spawned worker processes) this module
imports ../shared/bench/quality/harness.py, adds the problems of mo_problems.py
to ``harness.problems_mod.SUITE`` and the adapters of mo_adapters.py to
``harness.OPTIMIZERS`` (replacing the harness's ``tpe`` by a subclass that is
identical on problems without a constraint metric), and wraps ``harness.run_one``:

* two-objective problems run through the harness's own ``run_one`` (regret =
  hypervolume gap of all feasible observations' true values, ref point of the problem);
* a problem with a constraint metric runs through ``run_one_cm`` below: the harness
  knows nothing of constraint metrics (it would treat the second metric as a
  second objective), so regret after n evaluations is |best f - optimum| over the
  observations so far whose constraint metrics satisfy their thresholds (`inf`
  until there is one), and the run also records the fraction of evaluations
  that satisfied them;
* after every run the result of optserve's GetBestAssignments check (done in
  ``OptserveChecked.close()``) is stored in the run's JSON as ``best_check``.

``report`` writes the harness's table (median log10 regret, IQR, infeasible
suggestions, seeds) and, below it, this benchmark's table: median hypervolume
gap (two objectives) or median log10 regret (constraint metric) per problem and
optimizer, and for optserve the number of best-assignment answers that
violated a constraint metric.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[3] / "shared" / "bench" / "quality"
sys.path[:0] = [str(SHARED), str(HERE)]
import harness  # noqa: E402  (../shared/bench/quality/harness.py)
import mo_adapters  # noqa: E402
import mo_problems  # noqa: E402

harness.problems_mod.SUITE.update(mo_problems.SUITE)
harness.OPTIMIZERS.update(mo_adapters.ADAPTERS)
_harness_run_one = harness.run_one


def run_one_cm(opt_name: str, prob_name: str, seed: int, budget: int, max_seconds: float) -> dict:
    """harness.run_one for a single optimized metric plus constraint metrics."""
    prob = harness.problems_mod.SUITE[prob_name]
    exp = prob.experiment
    names = [m["name"] for m in exp["metrics"]]
    opt_i = next(
        i for i, m in enumerate(exp["metrics"]) if m.get("strategy", "optimize") == "optimize"
    )
    cms = [(names.index(m["name"]), m) for m in mo_problems.constraint_metrics(exp)]
    sign = 1.0 if exp["metrics"][opt_i]["objective"] == "minimize" else -1.0
    rng = np.random.default_rng(10_000 + seed)
    rec = {
        "optimizer": opt_name,
        "problem": prob_name,
        "seed": seed,
        "budget_run": budget,
        "budget_aware": harness.OPTIMIZERS[opt_name].budget_aware,
        "optimum": prob.optimum,
        "objective": [m["objective"] for m in exp["metrics"]],
        "observed": [],
        "true": [],
        "feasible": [],
        "violations": [],
        "metric_feasible": [],
        "suggest_s": [],
        "regret": [],
        "best_true": [],
        "error": None,
        "truncated": False,
    }
    t_start = time.time()
    try:
        opt = harness.OPTIMIZERS[opt_name](exp, seed, budget)
    except Exception:
        rec["error"] = traceback.format_exc(limit=5)
        return rec
    best_obs, best_true = None, None
    for _ in range(budget):
        if time.time() - t_start > max_seconds:
            rec["truncated"] = True
            break
        t0 = time.perf_counter()
        try:
            a = opt.suggest()
        except Exception:
            rec["error"] = traceback.format_exc(limit=5)
            break
        rec["suggest_s"].append(time.perf_counter() - t0)
        bad = harness.check_feasible(exp, a)
        if bad:
            rec["feasible"].append(False)
            rec["violations"].append(bad[:3])
            rec["observed"].append(None)
            rec["true"].append(None)
            rec["metric_feasible"].append(False)
            try:
                opt.observe(a, None, failed=True)
            except Exception:
                rec["error"] = traceback.format_exc(limit=5)
                break
        else:
            y = prob.evaluate(a, rng)
            yt = prob.true_value(a)
            ok = all(mo_problems.metric_ok(m, yt[i]) for i, m in cms)
            rec["feasible"].append(True)
            rec["violations"].append([])
            rec["observed"].append(list(y))
            rec["true"].append(list(yt))
            rec["metric_feasible"].append(ok)
            if ok and (best_obs is None or sign * y[opt_i] < sign * best_obs):
                best_obs, best_true = y[opt_i], yt[opt_i]
            try:
                opt.observe(a, y)
            except Exception:
                rec["error"] = traceback.format_exc(limit=5)
                break
        rec["best_true"].append(best_true)
        rec["regret"].append(None if best_true is None else abs(best_true - prob.optimum))
    rec["wall_s"] = time.time() - t_start
    with contextlib.suppress(Exception):  # as the harness: close() errors do not void a run
        opt.close()
    return rec


def run_one(opt_name, prob_name, seed, budget, max_seconds):
    mo_adapters.LAST_CHECK = None
    prob = harness.problems_mod.SUITE[prob_name]
    if mo_problems.constraint_metrics(prob.experiment):
        rec = run_one_cm(opt_name, prob_name, seed, budget, max_seconds)
    else:
        rec = _harness_run_one(opt_name, prob_name, seed, budget, max_seconds)
    rec["best_check"] = mo_adapters.LAST_CHECK
    return rec


harness.run_one = run_one


# ============================================================== report


def cmd_report(args):
    harness.cmd_report(args)  # the harness's table -> args.out (+ .json)
    runs = harness.load_runs(Path(args.results))
    probs = [p for p in harness.problems_mod.SUITE if any(r["problem"] == p for r in runs)]
    order = [o for o in harness.OPTIMIZERS if any(r["optimizer"] == o for r in runs)]
    lines = [
        "\n## Summary (bench/quality/mo)\n",
        "Two-objective problems: median hypervolume gap (true-front HV minus HV of the "
        "feasible observations' true values) [q25, q75]. Constraint-metric problem: "
        "median log10 regret over observations that satisfy the constraint metric "
        "[q25, q75] (`inf`: none yet). 10 seeds each unless the cell says otherwise.\n",
    ]
    rows = []
    for b in args.budgets:
        lines.append(f"\n### Budget {b}\n")
        lines.append("| problem | " + " | ".join(order) + " |")
        lines.append("|---|" + "---|" * len(order))
        for p in probs:
            prob = harness.problems_mod.SUITE[p]
            cm = bool(mo_problems.constraint_metrics(prob.experiment))
            cells = []
            for o in order:
                vals = [
                    v
                    for r in runs
                    if r["problem"] == p and r["optimizer"] == o
                    for v in [harness._regret_at(r, b)]
                    if v is not None
                ]
                if not vals:
                    cells.append("–")
                    continue
                if cm:
                    vals = [math.log10(max(v, 1e-12)) for v in vals]
                med, q1, q3 = (float(np.percentile(vals, q)) for q in (50, 25, 75))
                fmt = "{:.2f}" if cm else "{:.3g}"
                cell = f"{fmt.format(med)} [{fmt.format(q1)}, {fmt.format(q3)}]"
                n = len(vals)
                cells.append(cell + ("" if n == 10 else f" ({n} seeds)"))
                rows.append(
                    {
                        "budget": b,
                        "problem": p,
                        "optimizer": o,
                        "kind": "log10_regret" if cm else "hv_gap",
                        "median": med,
                        "q25": q1,
                        "q75": q3,
                        "seeds": n,
                    }
                )
            meds = {
                r["optimizer"]: r["median"] for r in rows if r["budget"] == b and r["problem"] == p
            }
            best = min(meds.values(), default=None)
            cells = [
                f"**{c}**" if meds.get(o) == best else c for o, c in zip(order, cells, strict=True)
            ]
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
    # constraint-metric details and optserve's best-assignment check
    lines.append("\n### Constraint metric and best assignments\n")
    lines.append(
        "Evaluations that satisfied the constraint metric (all seeds, the budget-80 "
        "runs); optserve: GetBestAssignments "
        "answers checked at the end of every run, answers with at least one "
        "observation violating a constraint metric / answers checked "
        "(and observations returned).\n"
    )
    lines.append(
        "| problem | optimizer | evaluations satisfying the constraint metric | "
        "best-assignment answers violating a constraint metric | errors |"
    )
    lines.append("|---|---|---|---|---|")
    for p in probs:
        prob = harness.problems_mod.SUITE[p]
        cm = bool(mo_problems.constraint_metrics(prob.experiment))
        for o in order:
            rs = [r for r in runs if r["problem"] == p and r["optimizer"] == o]
            if not rs:
                continue
            if cm:
                mf = [f for r in rs if r["budget_run"] == 80 for f in r.get("metric_feasible", [])]
                frac = f"{sum(mf)}/{len(mf)} ({100 * sum(mf) / max(len(mf), 1):.0f}%)"
            else:
                frac = "n/a"
            checks = [r.get("best_check") for r in rs if r.get("best_check")]
            if checks:
                viol = sum(
                    1
                    for c in checks
                    if (c["best_violating_stored"] or 0)
                    + (c["best_violating_true"] or 0)
                    + (c["best_linear_infeasible"] or 0)
                    > 0
                )
                nobs = sum(c["best_n"] or 0 for c in checks)
                errs = sum(1 for c in checks if c["error"])
                bc = f"{viol} / {len(checks)} ({nobs} observations)"
            else:
                bc, errs = "–", 0
            errs += sum(1 for r in rs if r["error"] or r["truncated"])
            if cm or checks:
                lines.append(f"| {p} | {o} | {frac} | {bc} | {errs} |")
    text = "\n".join(lines) + "\n"
    with open(args.out, "a") as fh:
        fh.write(text)
    Path(args.out).with_name("summary.json").write_text(json.dumps(rows, indent=1))
    print(text)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        import argparse

        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("--results", default="results")
        ap.add_argument("--budgets", nargs="+", type=int, default=[30, 80])
        ap.add_argument("--out", default="results/tables.md")
        cmd_report(ap.parse_args(argv))
    else:
        harness.main(argv)


if __name__ == "__main__":
    main()
