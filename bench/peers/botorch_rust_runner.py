"""One BoTorch-style suggestion per history, by botorch-rust (``botorch_rs``).

Run by ``bench/maximizer.py`` with the python of a side venv holding
``botorch-rust`` (never a dependency of optserve): reads the problems as JSON
on stdin, writes timings and candidates as JSON on stdout. Standard library
only, so that the side venv needs nothing else.

Each suggestion: SingleTaskGP (Standardize) fitted by fit_gpytorch_mll, then
LogExpectedImprovement over the best observed value maximized by
optimize_acqf (num_restarts=10, raw_samples=512, the BoTorch tutorials'
defaults) under the problem's linear constraints; integer columns are those
of a continuous relaxation, rounded afterwards by the caller.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

from botorch_rs.acquisition import LogExpectedImprovement
from botorch_rs.fit import fit_gpytorch_mll
from botorch_rs.mlls import ExactMarginalLogLikelihood
from botorch_rs.models import SingleTaskGP
from botorch_rs.models.transforms import Standardize
from botorch_rs.optim import optimize_acqf


def suggest(x: list[list[float]], y: list[float], constraints: list) -> dict:
    d = len(x[0])
    t0 = time.perf_counter()
    model = SingleTaskGP(x, [[v] for v in y], outcome_transform=Standardize(m=1))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    t1 = time.perf_counter()
    acqf = LogExpectedImprovement(model, best_f=max(y))
    kwargs = {}
    if constraints:
        kwargs["inequality_constraints"] = [(c[0], c[1], c[2]) for c in constraints]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        candidate, _ = optimize_acqf(
            acqf,
            bounds=[[0.0] * d, [1.0] * d],
            q=1,
            num_restarts=10,
            raw_samples=512,
            **kwargs,
        )
    t2 = time.perf_counter()
    return {"fit": t1 - t0, "maximizer": t2 - t1, "total": t2 - t0, "x": candidate[0]}


def main() -> None:
    problems = json.load(sys.stdin)
    out = []
    for problem in problems:
        runs = [suggest(h["x"], h["y"], problem["constraints"]) for h in problem["histories"]]
        out.append({"name": problem["name"], "runs": runs})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
