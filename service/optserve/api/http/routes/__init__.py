"""The route table: (path, {method: handler}) from each resource's module."""

from __future__ import annotations

from ..app import Handler
from . import experiments, observations, projects, runs, suggestions, tokens


def table() -> list[tuple[str, dict[str, Handler]]]:
    return [
        *experiments.ROUTES,
        *suggestions.ROUTES,
        *observations.ROUTES,
        *projects.ROUTES,
        *runs.ROUTES,
        *tokens.ROUTES,
    ]
