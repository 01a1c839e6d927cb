"""The dashboard's JSON, read through the Application with the caller's token.

Endpoints are plain functions, so Starlette runs them in its worker threads (the
Application's calls block on SQLite).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from .. import importance
from ..api.auth import BEARER, Authenticator
from ..application import Application, Call
from ..domain.errors import InvalidArgument, NotFound, OptserveError, PermissionDenied
from ..domain.limits import MAX_PAGE_SIZE
from ..domain.model import (
    Experiment,
    Objective,
    Observation,
    ParameterType,
    Strategy,
    Suggestion,
    SuggestionState,
)

STATIC = Path(__file__).parent / "static"
# The list page shows this many experiments, newest first.
MAX_LISTED = 1000
# Fits of the importance GP kept, by (experiment, metric, the points they fit).
IMPORTANCE_CACHE = 64
_STATUS = {InvalidArgument: 400, PermissionDenied: 403, NotFound: 404}


def _json(content: Any, status: int = 200) -> Response:
    text = json.dumps(content, separators=(",", ":"), allow_nan=False, default=_default)
    return Response(
        text,
        status_code=status,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class DashboardApi:
    def __init__(self, app: Application, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator
        self._lock = threading.Lock()
        self._importance: OrderedDict[tuple[str, str, bytes], Any] = OrderedDict()

    # -------------------------------------------------------------- endpoints

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    def experiments(self, request: Request) -> Response:
        return self._answer(request, lambda call: {"experiments": self._list(call)})

    def experiment(self, request: Request) -> Response:
        experiment_id = request.path_params["experiment_id"]
        return self._answer(request, lambda call: self._detail(experiment_id, call))

    def importance(self, request: Request) -> Response:
        experiment_id = request.path_params["experiment_id"]
        metric = request.query_params.get("metric", "")
        return self._answer(request, lambda call: self._importances(experiment_id, metric, call))

    # -------------------------------------------------------------- plumbing

    def _answer(self, request: Request, read: Any) -> Response:
        authorization = request.headers.get("authorization", "")
        if not authorization and "token" in request.query_params:
            authorization = BEARER + request.query_params["token"]
        principal = self.authenticator.principal(authorization)
        if principal is None:
            return _json({"message": "missing, unknown or revoked token"}, 401)
        try:
            return _json(read(Call(principal=principal)))
        except OptserveError as error:
            return _json({"message": str(error)}, _STATUS.get(type(error), 500))

    # -------------------------------------------------------------- reads

    def _list(self, call: Call) -> list[dict[str, Any]]:
        found: list[Experiment] = []
        token = ""
        while len(found) < MAX_LISTED:
            page = self.app.list_experiments("", None, MAX_PAGE_SIZE, token, call)
            found += page.items
            token = page.next_token
            if not token:
                break
        return [_summary(e) for e in found[:MAX_LISTED]]

    def _detail(self, experiment_id: str, call: Call) -> dict[str, Any]:
        exp = self.app.get_experiment(experiment_id, call)
        observations = self._pages(
            lambda size, token: self.app.list_observations(experiment_id, size, token, call)
        )
        suggestions = self._pages(
            lambda size, token: self.app.list_suggestions(
                experiment_id, SuggestionState.OPEN, size, token, call
            )
        )
        best, explanation = self.app.best_assignments(experiment_id, call)
        progress = exp.progress
        last = observations[-1].id if observations else ""
        shown_observations = [_observation(o) for o in observations]
        shown_suggestions = [_suggestion(s) for s in suggestions]
        return {
            "experiment": _summary(exp) | _definition(exp),
            "observations": shown_observations,
            "open_suggestions": shown_suggestions,
            "best": [o.id for o in best],
            "best_explanation": explanation,
            # changes whenever anything shown changes (an observation's values too)
            "version": f"{progress.observation_count}:{len(suggestions)}:{last}:"
            f"{exp.update_time.isoformat() if exp.update_time else ''}:{exp.state.value}:"
            f"{_digest((shown_observations, shown_suggestions))}",
        }

    @staticmethod
    def _pages(read: Any) -> list[Any]:
        items: list[Any] = []
        token = ""
        while True:
            page = read(MAX_PAGE_SIZE, token)
            items += page.items
            token = page.next_token
            if not token:
                return items

    def _importances(self, experiment_id: str, metric: str, call: Call) -> dict[str, Any]:
        exp = self.app.get_experiment(experiment_id, call)
        chosen = exp.metric(metric) if metric else (exp.optimized_metrics or exp.metrics)[0]
        if chosen is None:
            raise InvalidArgument.single("metric", f"{metric!r} is not a metric of the experiment")
        observations = self._pages(
            lambda size, token: self.app.list_observations(experiment_id, size, token, call)
        )
        points = [
            (o.assignments, v)
            for o in observations
            if not o.failed and (v := o.value_of(chosen.name)) is not None
        ]
        key = (experiment_id, chosen.name, importance.points_key(points))
        with self._lock:
            if key in self._importance:
                self._importance.move_to_end(key)
                return self._importance[key]
        scores: list[tuple[str, float]] | None = None
        if len(points) >= importance.MIN_POINTS:
            scores = importance.importances(exp, [a for a, _ in points], [v for _, v in points])
        answer = {
            "metric": chosen.name,
            "points": len(points),
            "scores": [{"name": n, "score": s} for n, s in scores] if scores else None,
            "needs": importance.MIN_POINTS,
        }
        with self._lock:
            self._importance[key] = answer
            while len(self._importance) > IMPORTANCE_CACHE:
                self._importance.popitem(last=False)
        return answer


# ---------------------------------------------------------------- JSON shapes


def _digest(shown: object) -> str:
    """A short digest of what a page shows (its JSON shapes)."""
    text = json.dumps(shown, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _summary(e: Experiment) -> dict[str, Any]:
    best = e.progress.best_observation
    optimized = [m.name for m in e.optimized_metrics]
    best_value = None
    if best is not None and optimized:
        best_value = _finite(best.value_of(optimized[0]))
    return {
        "id": e.id,
        "name": e.name,
        "project": e.project,
        "type": e.type.value,
        "state": e.state.value,
        "budget": e.observation_budget,
        "observations": e.progress.observation_count,
        "failed": e.progress.failed_observation_count,
        "open": e.progress.open_suggestion_count,
        "best": None if best_value is None else {"metric": optimized[0], "value": best_value},
        "create_time": e.create_time,
        "update_time": e.update_time,
    }


def _definition(e: Experiment) -> dict[str, Any]:
    parameters = []
    for p in e.parameters:
        entry: dict[str, Any] = {
            "name": p.name,
            "type": p.type.value if p.type else None,
            "log": p.is_log,
            "conditions": p.conditions,
        }
        if p.type is ParameterType.CATEGORICAL:
            entry["values"] = p.categorical_values
        elif p.bounds is not None:
            entry["min"], entry["max"] = p.bounds.min, p.bounds.max
        elif p.grid:
            entry["min"], entry["max"] = min(p.grid), max(p.grid)
        parameters.append(entry)
    return {
        "parameters": parameters,
        "conditionals": [{"name": c.name, "values": c.values} for c in e.conditionals],
        "metrics": [
            {
                "name": m.name,
                "objective": (m.objective or Objective.MAXIMIZE).value,
                "strategy": (m.strategy or Strategy.OPTIMIZE).value,
                "threshold": m.threshold,
            }
            for m in e.metrics
        ],
        "parallel_bandwidth": e.parallel_bandwidth,
    }


def _observation(o: Observation) -> dict[str, Any]:
    return {
        "id": o.id,
        "suggestion_id": o.suggestion_id,
        "create_time": o.create_time,
        "failed": o.failed,
        "assignments": o.assignments,
        "values": {v.name: _finite(v.value) for v in o.values},
    }


def _suggestion(s: Suggestion) -> dict[str, Any]:
    return {
        "id": s.id,
        "create_time": s.create_time,
        "expire_time": s.expire_time,
        "assignments": s.assignments,
    }
