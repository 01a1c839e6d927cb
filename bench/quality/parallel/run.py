"""Parallel mode of the quality benchmark: q suggestions open at once.

    python bench/quality/parallel/run.py run --optimizers optserve tpe_cl \
        --problems all --seeds 5 --budgets 80 --q 1 8 --out bench/quality/parallel/results
    python bench/quality/parallel/run.py report --results bench/quality/parallel/results

The shared harness (../shared/bench/quality/harness.py) is strictly sequential.
This runner keeps its problems, feasibility check, scoring, run-file format and
per-file caching, and simulates q workers:

* ``async`` (default): q suggestions are open at once. Each step one of the open
  suggestions, drawn uniformly with a generator seeded by (seed, q), is
  evaluated and answered (its worker finished first); then one new suggestion is
  asked for, until ``budget`` suggestions have been issued and all are answered.
  q = 1 is exactly the harness's sequential run.
* ``batch``: q suggestions asked at once (optserve: one
  ``create_suggestions(count=q)``, the points chosen jointly; Optuna: q
  ``ask()``), all q answered in random order, then the next batch.

An infeasible suggestion is refused when its turn comes, answered as failed and
uses up one evaluation, as in the harness. Regret after n evaluations counts
evaluations in the order they were answered; noise (noisy problems) is drawn in
that order from the harness's generator (10_000 + seed).

Optimizers: ``optserve`` (bench/quality/adapter.py through QUALITY_ADAPTERS, a
real server through the client) and ``tpe_cl``: Optuna 5.0.0
``TPESampler(seed=seed, constant_liar=True)``, linear constraints learned from
failures as the harness's ``tpe``; ``ax_async``: Ax's default generation strategy
with the setting Ax gives for asynchronous use (``AxAsync``). The others of the
harness run too.

Run files: ``runs/<optimizer>__<problem>__s<seed>__b<budget>__q<q>[__batch].json``;
an existing file is not rerun, so an interrupted command resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SHARED = REPO.parent / "shared" / "bench" / "quality"
sys.path.insert(0, str(SHARED))
import harness  # noqa: E402  (../shared/bench/quality/harness.py)
from harness import OptunaAdapter  # noqa: E402

problems_mod = harness.problems_mod


class OptunaTPEConstantLiar(OptunaAdapter):
    """TPESampler(constant_liar=True): open trials are given a pessimistic
    value while sampling, so parallel workers do not all get the same point."""

    name = "tpe_cl"
    use_constraints = True

    def _sampler(self, seed):
        return self.optuna.samplers.TPESampler(seed=seed, constant_liar=True)


class AxAsync(harness.AxBoTorch):
    """Ax's default generation strategy (the harness's ``ax``), allowed to go on
    drawing its initial Sobol points while earlier ones are still running: Ax's
    own setting for asynchronous use. Without it Ax refuses a suggestion until
    its initial points are observed, which no worker here waits for. After the
    initial points, BoTorch's acquisition takes the open trials as pending
    points (``X_pending``). With one suggestion open it is the harness's ``ax``."""

    name = "ax_async"

    def __init__(self, experiment, seed, budget):
        super().__init__(experiment, seed, budget)
        self.client.configure_generation_strategy(allow_exceeding_initialization_budget=True)


for _cls in (OptunaTPEConstantLiar, AxAsync):
    harness.OPTIMIZERS[_cls.name] = _cls


def register_problems(extra: dict) -> None:
    """Adds problems (name -> harness Problem) to the suite this runner uses."""
    problems_mod.SUITE.update(extra)


def _suggest_batch(opt, k: int) -> list[dict]:
    """k suggestions at once: the adapter's suggest_batch if it has one."""
    if hasattr(opt, "suggest_batch"):
        return list(opt.suggest_batch(k))
    return [opt.suggest() for _ in range(k)]


def run_one(
    opt_name: str,
    prob_name: str,
    seed: int,
    budget: int,
    q: int,
    mode: str,
    max_seconds: float,
) -> dict:
    prob = problems_mod.SUITE[prob_name]
    exp = prob.experiment
    rng = np.random.default_rng(10_000 + seed)
    order_rng = np.random.default_rng([20_000 + seed, q])
    rec = {
        "optimizer": opt_name,
        "problem": prob_name,
        "seed": seed,
        "budget_run": budget,
        "q": q,
        "mode": mode,
        "budget_aware": harness.OPTIMIZERS[opt_name].budget_aware,
        "optimum": prob.optimum,
        "objective": [m["objective"] for m in exp["metrics"]],
        "observed": [],
        "true": [],
        "feasible": [],
        "violations": [],
        "issued": [],  # issue index of the n-th answered suggestion
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
        rec["wall_s"] = time.time() - t_start
        return rec
    best_obs, best_true, front = None, None, []
    sign = 1.0 if prob.n_objectives > 1 or prob.objective == "minimize" else -1.0
    open_: list[tuple[int, dict]] = []
    issued = 0
    try:
        while len(rec["regret"]) < budget:
            if time.time() - t_start > max_seconds:
                rec["truncated"] = True
                break
            free = min(q - len(open_), budget - issued)
            if mode == "batch" and open_:
                free = 0  # the next batch waits for the whole current one
            if free > 0:
                if mode == "batch":
                    t0 = time.perf_counter()
                    batch = _suggest_batch(opt, free)
                    dt = (time.perf_counter() - t0) / max(len(batch), 1)
                    rec["suggest_s"] += [dt] * len(batch)
                else:
                    batch = []
                    for _ in range(free):
                        t0 = time.perf_counter()
                        batch.append(opt.suggest())
                        rec["suggest_s"].append(time.perf_counter() - t0)
                for a in batch:
                    open_.append((issued, a))
                    issued += 1
            idx, a = open_.pop(int(order_rng.integers(len(open_))))
            rec["issued"].append(idx)
            bad = harness.check_feasible(exp, a)
            if bad:
                rec["feasible"].append(False)
                rec["violations"].append(bad[:3])
                rec["observed"].append(None)
                rec["true"].append(None)
                opt.observe(a, None, failed=True)
            else:
                y = prob.evaluate(a, rng)
                yt = prob.true_value(a)
                rec["feasible"].append(True)
                rec["violations"].append([])
                rec["observed"].append(list(y) if isinstance(y, tuple) else y)
                rec["true"].append(list(yt) if isinstance(yt, tuple) else yt)
                if prob.n_objectives > 1:
                    front.append(tuple(yt))
                elif best_obs is None or sign * y < sign * best_obs:
                    best_obs, best_true = y, yt
                opt.observe(a, y)
            if prob.n_objectives > 1:
                hv = problems_mod.hypervolume_2d(front, prob.ref_point)
                rec["best_true"].append(hv)
                rec["regret"].append(max(prob.optimum - hv, 0.0))
            else:
                rec["best_true"].append(best_true)
                rec["regret"].append(None if best_true is None else abs(best_true - prob.optimum))
    except Exception:
        rec["error"] = traceback.format_exc(limit=5)
    rec["wall_s"] = time.time() - t_start
    with contextlib.suppress(Exception):  # as the harness: close() errors do not void a run
        opt.close()
    return rec


def run_path(out: Path, opt: str, prob: str, seed: int, budget: int, q: int, mode: str) -> Path:
    tail = "__batch" if mode == "batch" else ""
    return out / "runs" / f"{opt}__{prob}__s{seed}__b{budget}__q{q}{tail}.json"


def _task(args):
    opt_name, prob_name, seed, budget, q, mode, max_seconds, out_dir, deadline = args
    path = run_path(Path(out_dir), opt_name, prob_name, seed, budget, q, mode)
    if path.exists():
        return str(path), "cached"
    if time.time() > deadline:
        return str(path), "skipped (deadline)"
    rec = run_one(opt_name, prob_name, seed, budget, q, mode, max_seconds)
    path.write_text(json.dumps(rec))
    status = "error" if rec["error"] else ("truncated" if rec["truncated"] else "ok")
    return str(path), f"{status} {rec['wall_s']:.1f}s"


def single_objective(names) -> list[str]:
    return [p for p in names if problems_mod.SUITE[p].n_objectives == 1]


def cmd_run(args) -> None:
    import multiprocessing as mp

    if args.problems == ["all"]:
        probs = single_objective(list(problems_mod.SUITE))
    else:
        probs = args.problems
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    deadline = time.time() + 60 * args.deadline_minutes
    tasks = []
    # seeds outermost: a run cut by the deadline still has whole seeds for every cell
    for seed in range(args.seeds):
        for q in args.q:
            for opt_name in args.optimizers:
                cls = harness.OPTIMIZERS[opt_name]
                budgets = sorted(set(args.budgets)) if cls.budget_aware else [max(args.budgets)]
                for prob_name in probs:
                    for b in budgets:
                        tasks.append(
                            (
                                opt_name,
                                prob_name,
                                seed,
                                b,
                                q,
                                args.mode,
                                args.max_run_seconds,
                                str(out),
                                deadline,
                            )
                        )
    print(f"{len(tasks)} runs, {args.workers} worker", flush=True)
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers, maxtasksperchild=20) as pool:
        for i, (path, status) in enumerate(pool.imap_unordered(_task, tasks), 1):
            print(f"[{i}/{len(tasks)}] {Path(path).name}: {status}", flush=True)


# ============================================================== report


def _regret_at(rec: dict, b: int) -> float | None:
    """Regret after b evaluations (harness rule: a budget-aware optimizer only
    at its own budget; others read from a longer run); None if not available."""
    if rec["budget_run"] != b and (rec["budget_aware"] or rec["budget_run"] < b):
        return None
    r = rec["regret"]
    if len(r) < b:
        return None
    v = r[b - 1]
    return math.inf if v is None else v


def _log(v: float) -> float:
    return math.log10(max(v, 1e-12))


INF = 99.0  # log10 regret standing for "no feasible observation yet" in percentiles


def _med(vals: list[float]) -> tuple[float, float, float]:
    """Median, q25, q75; inf (no feasible observation) sorts above every number."""
    finite = [min(v, INF) for v in vals]
    q1, med, q3 = (float(np.percentile(finite, p)) for p in (25, 50, 75))
    return med, q1, q3


def _fmt(v: float) -> str:
    return "inf" if v >= INF else f"{v:.2f}"


def cmd_report(args) -> None:
    runs = harness.load_runs(Path(args.results))
    mode = args.mode
    runs = [r for r in runs if r.get("mode", "async") == mode]
    probs = [p for p in problems_mod.SUITE if any(r["problem"] == p for r in runs)]
    names = sorted({r["optimizer"] for r in runs})
    opts = [o for o in ("optserve", "tpe_cl") if o in names] + [
        o for o in names if o not in ("optserve", "tpe_cl")
    ]
    qs = sorted({r["q"] for r in runs})
    cell: dict[tuple, tuple[float, float, float, int]] = {}
    infeas: dict[tuple, int] = {}
    for b in args.budgets:
        for p in probs:
            for o in opts:
                for q in qs:
                    vals, bad = [], 0
                    for r in runs:
                        if (r["problem"], r["optimizer"], r["q"]) != (p, o, q):
                            continue
                        v = _regret_at(r, b)
                        if v is None:
                            continue
                        vals.append(_log(v))
                        bad += sum(1 for f in r["feasible"][:b] if not f)
                    if vals:
                        cell[(b, p, o, q)] = (*_med(vals), len(vals))
                        infeas[(b, p, o, q)] = bad
    seeds = sorted({n for *_, n in cell.values()})
    lines = [
        f"# Parallel mode ({mode})\n",
        "q suggestions open at once, "
        + (
            "answered one at a time in a seeded random order, each answer followed by "
            "one new suggestion"
            if mode == "async"
            else "asked together and answered in a seeded random order before the next batch"
        )
        + ". Cell: median log10 simple regret [q25, q75] over the seeds (regret floored "
        "at 1e-12; `inf` = no feasible observation yet); `!n` = n infeasible suggestions "
        f"over the seeds. Seeds per cell: {', '.join(map(str, seeds))}. optserve runs "
        "separately per budget (it is told the budget); Optuna runs once to the largest "
        "budget and is read at the smaller.\n",
    ]
    cols = [(o, q) for o in opts for q in qs]
    for b in args.budgets:
        lines.append(f"\n## Budget {b}\n")
        lines.append("| problem | " + " | ".join(f"{o} q={q}" for o, q in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for p in probs:
            cells = []
            for o, q in cols:
                c = cell.get((b, p, o, q))
                if c is None:
                    cells.append("–")
                    continue
                bad = infeas[(b, p, o, q)]
                cells.append(
                    f"{_fmt(c[0])} [{_fmt(c[1])}, {_fmt(c[2])}]" + (f" !{bad}" if bad else "")
                )
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
    # regret against the number of evaluations, from the runs of the largest budget
    big = max(args.budgets)
    marks = [n for n in (5, 10, 20, 30, 40, 50, 60, 70, 80) if n <= big]
    lines.append(f"\n## Regret against evaluations (runs of budget {big})\n")
    lines.append(
        "Median log10 simple regret after n answered evaluations, same runs as the "
        f"budget-{big} table.\n"
    )
    lines.append("| problem | optimizer | q | " + " | ".join(f"n={n}" for n in marks) + " |")
    lines.append("|---|---|---|" + "---|" * len(marks))
    for p in probs:
        for o in opts:
            for q in qs:
                rs = [
                    r
                    for r in runs
                    if (r["problem"], r["optimizer"], r["q"], r["budget_run"]) == (p, o, q, big)
                ]
                if not rs:
                    continue
                cells = []
                for n in marks:
                    vals = [
                        _log(r["regret"][n - 1] if r["regret"][n - 1] is not None else math.inf)
                        for r in rs
                        if len(r["regret"]) >= n
                    ]
                    cells.append(_fmt(_med(vals)[0]) if vals else "–")
                lines.append(f"| {p} | {o} | {q} | " + " | ".join(cells) + " |")
    # issue 13's target 1
    qmax = max(qs)
    me = "optserve" if "optserve" in opts else None
    if me and 1 in qs and qmax > 1:
        lines.append(f"\n## Targets (issue 13, item 1), budget {big}\n")
        within, below, rows = [], [], []
        for p in probs:
            c1, cq = cell.get((big, p, me, 1)), cell.get((big, p, me, qmax))
            t = cell.get((big, p, "tpe_cl", qmax))
            if c1 is None or cq is None:
                continue
            d = cq[0] - c1[0]
            ok1 = d <= 0.3
            ok2 = t is not None and cq[0] < t[0]
            within.append(ok1)
            below.append(ok2)
            rows.append(
                f"| {p} | {_fmt(c1[0])} | {_fmt(cq[0])} | {d:+.2f} {'ok' if ok1 else 'MISSED'} | "
                + (f"{_fmt(t[0])} | {'ok' if ok2 else 'MISSED'}" if t else "– | –")
                + " |"
            )
        lines.append(
            f"| problem | optserve q=1 | optserve q={qmax} | q={qmax} minus q=1 (target "
            f"<= 0.3) | tpe_cl q={qmax} | optserve q={qmax} below tpe_cl |"
        )
        lines.append("|---|---|---|---|---|---|")
        lines += rows
        lines.append(
            f"\n- optserve at q={qmax} within 0.3 of q=1: {sum(within)}/{len(within)} problems"
        )
        lines.append(
            f"- optserve at q={qmax} below tpe_cl at q={qmax}: {sum(below)}/{len(below)} problems"
        )
    lines.append("\n## Milliseconds per suggestion (median over all suggestions)\n")
    lines.append("| optimizer | " + " | ".join(f"q={q}" for q in qs) + " |")
    lines.append("|---|" + "---|" * len(qs))
    for o in opts:
        cells = []
        for q in qs:
            ts = [t for r in runs if (r["optimizer"], r["q"]) == (o, q) for t in r["suggest_s"]]
            cells.append(f"{1000 * float(np.median(ts)):.1f}" if ts else "–")
        lines.append(f"| {o} | " + " | ".join(cells) + " |")
    wall = sum(r.get("wall_s", 0.0) for r in runs)
    lines.append(f"\n{len(runs)} runs, {wall / 60:.0f} minutes of run wall time in all.")
    errs = [r for r in runs if r["error"] or r["truncated"]]
    if errs:
        lines.append("\n## Errored / truncated runs\n")
        for r in errs:
            msg = (r["error"] or "truncated").strip().splitlines()[-1]
            lines.append(f"- {r['optimizer']} {r['problem']} seed {r['seed']} q={r['q']}: {msg}")
    text = "\n".join(lines) + "\n"
    out = Path(args.out or Path(args.results) / f"tables{'' if mode == 'async' else '_batch'}.md")
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps(
            [
                {
                    "budget": k[0],
                    "problem": k[1],
                    "optimizer": k[2],
                    "q": k[3],
                    "median_log10_regret": v[0],
                    "q25": v[1],
                    "q75": v[2],
                    "seeds": v[3],
                    "infeasible": infeas[k],
                }
                for k, v in cell.items()
            ],
            indent=1,
        )
    )
    print(text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--optimizers", nargs="+", default=["optserve", "tpe_cl"])
    r.add_argument(
        "--problems",
        nargs="+",
        default=["all"],
        help="'all' = the single-objective problems of the suite",
    )
    r.add_argument("--seeds", type=int, default=10)
    r.add_argument("--budgets", nargs="+", type=int, default=[30, 80])
    r.add_argument("--q", nargs="+", type=int, default=[1, 4, 8])
    r.add_argument("--mode", choices=["async", "batch"], default="async")
    r.add_argument("--workers", type=int, default=1)
    r.add_argument("--out", default=str(HERE / "results"))
    r.add_argument("--max-run-seconds", type=float, default=600.0)
    r.add_argument("--deadline-minutes", type=float, default=60.0)
    p = sub.add_parser("report")
    p.add_argument("--results", default=str(HERE / "results"))
    p.add_argument("--budgets", nargs="+", type=int, default=[30, 80])
    p.add_argument("--mode", choices=["async", "batch"], default="async")
    p.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if getattr(args, "workers", 1) > 2:
        ap.error("at most 2 worker processes")
    cmd_run(args) if args.cmd == "run" else cmd_report(args)


if __name__ == "__main__":
    main()
