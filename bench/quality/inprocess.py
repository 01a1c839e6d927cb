"""In-process optserve adapter for the quality harness and the parallel runner.

Calls the optimizer as the server does (``optserve.optimizers.suggest`` with the
experiment's observations in the order they were reported and its open
suggestions as pending points, each suggestion numbered in the order it was
issued), without a server, a client or a database. A run gives the same
points as the server adapter's (``adapter.py``; checked on c55f9d5 for five
problems at q = 8 and two in batch mode, run files equal), with less overhead
(1.1-2x faster there) and nothing to start, which suits paired comparisons of
two versions of the optimizer over many seeds (``OPTSERVE_SERVICE_PATH``); the
server adapter stays the reference for the published tables.

Runs in the service's venv (the harness imports Optuna only for its own
adapters)::

    QUALITY_ADAPTERS=bench/quality/inprocess.py:InProcessAdapter \\
        .venv/bin/python bench/quality/parallel/run.py run --optimizers optserve \\
        --problems levy4 --seeds 40 --budgets 80 --q 8 --out /tmp/q8

Environment:
    OPTSERVE_SERVICE_PATH  a directory holding an ``optserve`` package to import
                           instead of the installed one (a snapshot of a commit,
                           as for ``adapter.py``)
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
from typing import Any

if os.environ.get("OPTSERVE_SERVICE_PATH"):
    sys.path.insert(0, os.environ["OPTSERVE_SERVICE_PATH"])

from optserve.api.http.convert import experiment_from_json
from optserve.domain.model import MetricValue, Observation, Suggestion
from optserve.domain.validation import validate_experiment
from optserve.optimizers import SuggestRequest, suggest


class InProcessAdapter:
    """The harness's ask/tell interface over ``optserve.optimizers.suggest``."""

    name = "optserve"
    budget_aware = True

    def __init__(self, experiment: dict[str, Any], seed: int, budget: int) -> None:
        spec = copy.deepcopy(experiment)
        spec["name"] = f"quality {experiment['name']} seed {seed} budget {budget}"
        spec["type"] = "offline"
        spec["observation_budget"] = int(budget)
        spec.pop("budget", None)
        exp = experiment_from_json(spec)
        self.experiment = dataclasses.replace(exp, id=f"inprocess-{seed}", seed=int(seed))
        validate_experiment(self.experiment)
        self.metric_names = [m.name for m in self.experiment.metrics]
        self.observations: list[Observation] = []
        self.open: list[Suggestion] = []
        self.issued = 0

    def suggest(self) -> dict[str, Any]:
        return self.suggest_batch(1)[0]

    def suggest_batch(self, count: int) -> list[dict[str, Any]]:
        """``count`` points chosen jointly, as one ``CreateSuggestions(count)``."""
        request = SuggestRequest(
            self.experiment, list(self.observations), list(self.open), count, self.issued
        )
        points = suggest(request)
        for point in points:
            self.open.append(Suggestion(f"s{self.issued}", self.experiment.id, point))
            self.issued += 1
        return [dict(p) for p in points]

    def observe(self, assignments: dict[str, Any], value: Any, failed: bool = False) -> None:
        i = next(i for i, s in enumerate(self.open) if s.assignments == assignments)
        suggestion = self.open.pop(i)
        values: list[MetricValue] = []
        if not failed:
            raw = tuple(value) if isinstance(value, (tuple, list)) else (value,)
            if len(raw) != len(self.metric_names):
                raise ValueError(f"{len(raw)} values for metrics {self.metric_names}")
            values = [MetricValue(n, float(v)) for n, v in zip(self.metric_names, raw, strict=True)]
        self.observations.append(
            Observation(
                f"o{len(self.observations)}",
                self.experiment.id,
                suggestion.id,
                suggestion.assignments,
                values,
                failed=failed,
            )
        )

    def close(self) -> None:
        pass
