"""Python client of optserve, a self-hosted SigOpt-style optimization service.

Two levels:

- :class:`Connection`: the service's calls (experiments, suggestions,
  observations, best assignments) on plain objects.
- SigOpt's AI module: :func:`create_experiment`, :func:`get_experiment`,
  ``experiment.loop()``, ``experiment.create_run()``, using a default
  Connection built from ``OPTSERVE_TARGET`` / ``OPTSERVE_TOKEN``.

Every failure is an :class:`ApiError`. Calls failing with ``UNAVAILABLE`` or
``DEADLINE_EXCEEDED`` are retried as the Connection's :class:`RetryPolicy`
says, writes with one request id across their attempts.
"""

from optserve_client._errors import ApiError, FieldViolation
from optserve_client._retry import RetryPolicy
from optserve_client.ai import (
    ExperimentContext,
    RunContext,
    create_experiment,
    get_connection,
    get_experiment,
    set_connection,
)
from optserve_client.connection import Connection
from optserve_client.objects import (
    Assignments,
    BestAssignments,
    Experiment,
    Observation,
    Page,
    Suggestion,
)

__all__ = [
    "ApiError",
    "Assignments",
    "BestAssignments",
    "Connection",
    "Experiment",
    "ExperimentContext",
    "FieldViolation",
    "Observation",
    "Page",
    "RetryPolicy",
    "RunContext",
    "Suggestion",
    "create_experiment",
    "get_connection",
    "get_experiment",
    "set_connection",
]
