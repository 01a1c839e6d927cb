"""Python client of optserve, a self-hosted SigOpt-style optimization service.

Two levels:

- :class:`Connection`: the service's calls (experiments, suggestions,
  observations, best assignments) on plain objects.
- SigOpt's AI module: :func:`create_experiment`, :func:`get_experiment`,
  ``experiment.loop()``, ``experiment.create_run()``, :func:`create_run`,
  :func:`get_run`, :func:`get_runs` (training runs), using a default
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
    TrainingRunContext,
    create_experiment,
    create_run,
    get_connection,
    get_experiment,
    get_run,
    get_runs,
    set_connection,
)
from optserve_client.connection import Connection
from optserve_client.objects import (
    Assignments,
    BestAssignments,
    BestRuns,
    Checkpoint,
    Experiment,
    Observation,
    Page,
    Project,
    QueuedSuggestion,
    RunValue,
    StoppingCriteria,
    Suggestion,
    TrainingRun,
)

__all__ = [
    "ApiError",
    "Assignments",
    "BestAssignments",
    "BestRuns",
    "Checkpoint",
    "Connection",
    "Experiment",
    "ExperimentContext",
    "FieldViolation",
    "Observation",
    "Page",
    "Project",
    "QueuedSuggestion",
    "RetryPolicy",
    "RunContext",
    "RunValue",
    "StoppingCriteria",
    "Suggestion",
    "TrainingRun",
    "TrainingRunContext",
    "create_experiment",
    "create_run",
    "get_connection",
    "get_experiment",
    "get_run",
    "get_runs",
    "set_connection",
]
