"""The experiment model: plain dataclasses shared by the service's layers."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# A parameter or conditional value: float (double), int (int), str (categorical/conditional).
Value = float | int | str
Assignments = dict[str, Value]


class ExperimentType(enum.Enum):
    OFFLINE = "offline"
    RANDOM = "random"
    GRID = "grid"


class ExperimentState(enum.Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    # soft-deleted (SigOpt's DELETE): still readable, accepts no new data
    DELETED = "deleted"


class ParameterType(enum.Enum):
    DOUBLE = "double"
    INT = "int"
    CATEGORICAL = "categorical"


class Transformation(enum.Enum):
    NONE = "none"
    LOG = "log"


class ConstraintType(enum.Enum):
    LESS_THAN = "less_than"
    GREATER_THAN = "greater_than"


class Objective(enum.Enum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class Strategy(enum.Enum):
    OPTIMIZE = "optimize"
    STORE = "store"
    CONSTRAINT = "constraint"


class SuggestionState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    # open, but its lease ran out: no longer pending; an observation still closes it
    EXPIRED = "expired"


@dataclass
class Bounds:
    min: float
    max: float


class PriorType(enum.Enum):
    NORMAL = "normal"
    BETA = "beta"


@dataclass
class Prior:
    """Belief about where a double parameter's good values lie: normal(mean, scale)
    in the parameter's units, or beta(shape_a, shape_b) over its bounds scaled to [0, 1]."""

    type: PriorType | None
    mean: float | None = None
    scale: float | None = None
    shape_a: float | None = None
    shape_b: float | None = None


@dataclass
class Parameter:
    name: str
    type: ParameterType | None
    bounds: Bounds | None = None
    categorical_values: list[str] = field(default_factory=list)
    grid: list[float] = field(default_factory=list)
    transformation: Transformation = Transformation.NONE
    # conditional name -> values that activate the parameter; empty = always active
    conditions: dict[str, list[str]] = field(default_factory=dict)
    prior: Prior | None = None
    # a value to try first (and the value of a parameter added after create)
    default_value: Value | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in (ParameterType.DOUBLE, ParameterType.INT)

    @property
    def is_log(self) -> bool:
        return self.transformation is Transformation.LOG

    def is_active(self, assignments: Assignments) -> bool:
        """True when every condition holds for the conditional values in ``assignments``."""
        return all(str(assignments.get(name)) in values for name, values in self.conditions.items())


@dataclass
class Conditional:
    name: str
    values: list[str]


@dataclass
class ConstraintTerm:
    name: str
    weight: float


@dataclass
class LinearConstraint:
    type: ConstraintType | None
    threshold: float
    terms: list[ConstraintTerm]

    def as_less_equal(self) -> tuple[dict[str, float], float]:
        """The constraint as ``sum(w_i x_i) <= b``: (weights by name, b)."""
        sign = 1.0 if self.type is ConstraintType.LESS_THAN else -1.0
        return {t.name: sign * t.weight for t in self.terms}, sign * self.threshold


@dataclass
class Metric:
    name: str
    objective: Objective = Objective.MAXIMIZE
    strategy: Strategy = Strategy.OPTIMIZE
    threshold: float | None = None

    def better(self, a: float, b: float) -> bool:
        """True when value ``a`` is strictly better than ``b`` for this metric."""
        return a > b if self.objective is Objective.MAXIMIZE else a < b

    def satisfies(self, value: float) -> bool:
        """Whether ``value`` meets the threshold (always true without one)."""
        if self.threshold is None:
            return True
        if self.objective is Objective.MAXIMIZE:
            return value >= self.threshold
        return value <= self.threshold


@dataclass
class MetricValue:
    name: str
    value: float
    stddev: float | None = None


@dataclass
class Observation:
    id: str
    experiment_id: str
    suggestion_id: str | None
    assignments: Assignments
    values: list[MetricValue] = field(default_factory=list)
    failed: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    create_time: datetime | None = None

    def value_of(self, metric: str) -> float | None:
        for v in self.values:
            if v.name == metric:
                return v.value
        return None


@dataclass
class Suggestion:
    id: str
    experiment_id: str
    assignments: Assignments
    state: SuggestionState = SuggestionState.OPEN
    metadata: dict[str, Any] = field(default_factory=dict)
    create_time: datetime | None = None
    # position in the experiment's sequence of suggestions; seeds its randomness
    sequence: int = 0
    # the lease: an open suggestion past expire_time is EXPIRED (None: never expires)
    expire_time: datetime | None = None
    lease_seconds: int = 0


@dataclass
class QueuedSuggestion:
    """Assignments queued by a client: served as the experiment's next suggestion,
    before the optimizer's."""

    id: str
    experiment_id: str
    assignments: Assignments
    create_time: datetime | None = None


@dataclass
class Progress:
    observation_count: int = 0
    failed_observation_count: int = 0
    open_suggestion_count: int = 0
    best_observation: Observation | None = None
    first_observation: Observation | None = None
    last_observation: Observation | None = None
    # training runs of the experiment (not deleted): all, and those completed or failed
    total_run_count: int = 0
    finished_run_count: int = 0

    @property
    def active_run_count(self) -> int:
        return self.total_run_count - self.finished_run_count


@dataclass
class Experiment:
    id: str
    name: str
    parameters: list[Parameter]
    metrics: list[Metric]
    project: str = ""
    type: ExperimentType = ExperimentType.OFFLINE
    conditionals: list[Conditional] = field(default_factory=list)
    linear_constraints: list[LinearConstraint] = field(default_factory=list)
    observation_budget: int | None = None
    parallel_bandwidth: int = 1
    num_solutions: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)
    state: ExperimentState = ExperimentState.ACTIVE
    seed: int = 0
    # default lease of its suggestions; None: the service default
    suggestion_lease_seconds: int | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    progress: Progress = field(default_factory=Progress)
    # an experiment driven by training runs (SigOpt's AI experiment): its
    # suggestions are made and observed through runs only
    runs_only: bool = False

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def optimized_metrics(self) -> list[Metric]:
        return [m for m in self.metrics if m.strategy is Strategy.OPTIMIZE]

    @property
    def constraint_metrics(self) -> list[Metric]:
        return [m for m in self.metrics if m.strategy is Strategy.CONSTRAINT]

    @property
    def required_metrics(self) -> list[Metric]:
        """Metrics every successful observation must report."""
        return [m for m in self.metrics if m.strategy is not Strategy.STORE]
