"""Adapters for the extra problems (two objectives, constraint metrics).

* ``tpe`` and ``nsga2``: Optuna 5.0.0 ``TPESampler(seed=seed)`` (its defaults:
  independent TPE for two objectives, multivariate for one) and
  ``NSGAIISampler(population_size=10, seed=seed)``.  On problems without a
  constraint metric ``tpe`` is exactly the harness's ``tpe``; linear constraints
  are learned from failures as the harness does (penalty value + ``set_constraint``).
  On a problem with a constraint metric only the optimized metrics are given to
  the study as objectives and each constraint metric is passed with
  ``Trial.set_constraint(name, value - threshold)`` (sign flipped for a maximized
  constraint metric), so Optuna treats ``<= 0`` as satisfied.
* ``optserve``: bench/quality/adapter.py's ``OptserveAdapter`` unchanged (it already
  reports every metric of the experiment dict in metric order, so the constraint
  metric ``g`` reaches the server as a second value), plus a check in ``close()``:
  one ``GetBestAssignments`` through the client before the experiment is deleted,
  counting returned observations whose constraint metric (as stored, and as
  recomputed from the assignments) violates its threshold, and returned
  assignments that break a linear constraint.  The result is left in
  ``LAST_CHECK`` for the runner, which stores it in the run's JSON.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SHARED = REPO.parent / "shared" / "bench" / "quality"
if str(SHARED) not in sys.path:
    sys.path.insert(0, str(SHARED))
import harness  # noqa: E402
from harness import OptunaAdapter, as_tuple, constraint_slacks  # noqa: E402

sys.path.insert(0, str(HERE))
import mo_problems  # noqa: E402


def _load_optserve_adapter():
    name = "optserve_quality_adapter"
    if name in sys.modules:
        return sys.modules[name].OptserveAdapter
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "quality" / "adapter.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod.OptserveAdapter


OptserveAdapter = _load_optserve_adapter()

# Set by OptserveChecked.close(); read (and reset) by the runner around each run.
LAST_CHECK: dict | None = None


class ConstraintMetricOptuna(OptunaAdapter):
    """OptunaAdapter that knows SigOpt constraint metrics (see the module docstring)."""

    use_constraints = True

    def __init__(self, experiment, seed, budget):
        self.cmetrics = mo_problems.constraint_metrics(experiment)
        if not self.cmetrics:
            super().__init__(experiment, seed, budget)
            return
        # the study sees the optimized metrics only
        view = dict(experiment, metrics=mo_problems.optimized_metrics(experiment))
        super().__init__(view, seed, budget)
        self.full_experiment = experiment
        self.n_opt = len(view["metrics"])
        self.constrained = True

    def observe(self, assignments, value, failed=False):
        if not self.cmetrics:
            return super().observe(assignments, value, failed)
        idx = next(i for i, (_, a) in enumerate(self.pending) if a == assignments)
        trial, _ = self.pending.pop(idx)
        if failed:
            self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            return
        vals = as_tuple(value)
        metrics = self.full_experiment["metrics"]
        opt = [
            float(v)
            for m, v in zip(metrics, vals, strict=True)
            if m.get("strategy", "optimize") == "optimize"
        ]
        for m, v in zip(metrics, vals, strict=True):
            if m.get("strategy") == "constraint":
                s = float(v) - m["threshold"]
                trial.set_constraint(m["name"], s if m["objective"] == "minimize" else -s)
        for i, s in enumerate(constraint_slacks(self.full_experiment, assignments)):
            trial.set_constraint(f"c{i}", s)
        self.feasible_values.append(tuple(opt))
        self.study.tell(trial, opt if len(opt) > 1 else opt[0])


class TPE(ConstraintMetricOptuna):
    name = "tpe"

    def _sampler(self, seed):
        return self.optuna.samplers.TPESampler(seed=seed)


class NSGA2(ConstraintMetricOptuna):
    name = "nsga2"
    population_size = 10

    def _sampler(self, seed):
        return self.optuna.samplers.NSGAIISampler(population_size=self.population_size, seed=seed)


class GP(ConstraintMetricOptuna):
    """Optuna GPSampler (needs torch; not installed in the benchmark venv here)."""

    name = "gp"

    def _sampler(self, seed):
        import torch

        torch.set_num_threads(1)
        return self.optuna.samplers.GPSampler(seed=seed)


class OptserveChecked(OptserveAdapter):
    """OptserveAdapter + a GetBestAssignments check before the experiment is deleted."""

    name = "optserve"

    def __init__(self, experiment, seed, budget):
        super().__init__(experiment, seed, budget)
        self.spec = experiment

    def close(self):
        global LAST_CHECK
        check = {
            "best_n": None,
            "best_violating_stored": None,
            "best_violating_true": None,
            "best_linear_infeasible": None,
            "explanation": None,
            "best_true": [],
            "error": None,
        }
        try:
            best = self.conn.get_best_assignments(self.experiment.id)
            cms = mo_problems.constraint_metrics(self.spec)
            prob_fn = _problem_fn(self.spec)
            check["best_n"] = len(best.data)
            check["explanation"] = best.explanation
            bad_stored = bad_true = bad_lin = 0
            for obs in best.data:
                a = dict(obs.assignments)
                stored = {v.name: v.value for v in obs.values}
                true = as_tuple(prob_fn(a)) if prob_fn else None
                names = [m["name"] for m in self.spec["metrics"]]
                if true is not None:
                    check["best_true"].append([float(t) for t in true])
                for m in cms:
                    if m["name"] not in stored or not mo_problems.metric_ok(m, stored[m["name"]]):
                        bad_stored += 1
                    i = names.index(m["name"])
                    if true is not None and not mo_problems.metric_ok(m, true[i]):
                        bad_true += 1
                if any(s > harness.TOL for s in constraint_slacks(self.spec, a)):
                    bad_lin += 1
            check.update(
                best_violating_stored=bad_stored,
                best_violating_true=bad_true,
                best_linear_infeasible=bad_lin,
            )
        except Exception as e:  # recorded; the run goes on
            check["error"] = repr(e)
        LAST_CHECK = check
        super().close()


def _problem_fn(spec):
    for p in mo_problems.SUITE.values():
        if p.experiment["name"] == spec["name"]:
            return p.fn
    return None


ADAPTERS = {c.name: c for c in (TPE, NSGA2, GP, OptserveChecked)}
