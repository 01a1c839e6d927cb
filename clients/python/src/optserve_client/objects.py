"""Plain Python objects returned by the client (no protobuf messages).

Enumerations are lower-case strings, as in SigOpt's API: parameter types
``"double"``, ``"int"``, ``"categorical"``; experiment types ``"offline"``,
``"random"``, ``"grid"``; objectives ``"maximize"``, ``"minimize"``; strategies
``"optimize"``, ``"store"``, ``"constraint"``; experiment states ``"active"``,
``"archived"``, ``"deleted"`` (soft-deleted: readable, accepts no new
data); training run states ``"active"``, ``"completed"``, ``"failed"``;
suggestion states ``"open"``, ``"closed"``, ``"expired"``. Metadata is a plain
dict (a google.protobuf.Struct on the wire, so numbers come back as floats).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = [
    "Assignments",
    "BestAssignments",
    "BestRuns",
    "Bounds",
    "Checkpoint",
    "Conditional",
    "ConstraintTerm",
    "Experiment",
    "LinearConstraint",
    "Metric",
    "MetricValue",
    "Observation",
    "Page",
    "Parameter",
    "Progress",
    "Project",
    "QueuedSuggestion",
    "RunValue",
    "Suggestion",
    "TrainingRun",
]

T = TypeVar("T")
Value = int | float | str


class Assignments(dict[str, Value]):
    """Parameter name -> value (int, float or str), readable as attributes too.

    ``assignments["x"]`` and ``assignments.x`` both work; a parameter that is
    absent (a conditional parameter whose conditions do not hold) raises
    ``KeyError`` and ``AttributeError`` respectively.
    """

    def __getattr__(self, name: str) -> Value:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"no assignment for {name!r} (assigned: {', '.join(sorted(self)) or 'none'})"
            ) from None

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.keys()]


class _Base:
    def to_dict(self) -> dict[str, Any]:
        """The object as nested plain dicts and lists."""
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class Bounds(_Base):
    """Inclusive bounds of a numeric parameter (ints for int parameters)."""

    min: float
    max: float


@dataclass
class Parameter(_Base):
    """A parameter of the search space.

    Attributes:
        conditions: Conditional name -> values activating the parameter
            (empty: always active).
        transformation: ``"log"``, ``"none"`` or None (unset, i.e. linear).
        prior: SigOpt's prior dict, double parameters only:
            ``dict(name="normal", mean=..., scale=...)`` or
            ``dict(name="beta", shape_a=..., shape_b=...)``; None when unset.
        default_value: A valid value of the parameter, None when unset.
    """

    name: str
    type: str
    bounds: Bounds | None = None
    categorical_values: list[str] = field(default_factory=list)
    grid: list[float] = field(default_factory=list)
    transformation: str | None = None
    conditions: dict[str, list[str]] = field(default_factory=dict)
    prior: dict[str, Any] | None = None
    default_value: Value | None = None


@dataclass
class Conditional(_Base):
    """A variable switching parameters on and off; always assigned."""

    name: str
    values: list[str] = field(default_factory=list)


@dataclass
class ConstraintTerm(_Base):
    """One ``weight * parameter`` term of a linear constraint."""

    name: str
    weight: float


@dataclass
class LinearConstraint(_Base):
    """``sum(weight * value) <= threshold`` (``"less_than"``) or ``>=`` (``"greater_than"``)."""

    type: str
    threshold: float
    terms: list[ConstraintTerm] = field(default_factory=list)


@dataclass
class Metric(_Base):
    """A metric definition."""

    name: str
    objective: str = "maximize"
    strategy: str = "optimize"
    threshold: float | None = None


@dataclass
class MetricValue(_Base):
    """The measured value of one metric."""

    name: str
    value: float
    value_stddev: float | None = None


@dataclass
class Observation(_Base):
    """The outcome of evaluating one point (a "run" in the AI module)."""

    id: str = ""
    experiment_id: str = ""
    suggestion_id: str | None = None
    assignments: Assignments = field(default_factory=Assignments)
    values: list[MetricValue] = field(default_factory=list)
    failed: bool = False
    metadata: dict[str, Any] | None = None
    create_time: datetime | None = None

    @property
    def value(self) -> float | None:
        """The value of the only metric reported, None when not exactly one."""
        return self.values[0].value if len(self.values) == 1 else None

    def metric(self, name: str) -> float | None:
        """The reported value of metric ``name``, None when absent."""
        return next((v.value for v in self.values if v.name == name), None)


@dataclass
class Suggestion(_Base):
    """A point proposed for evaluation.

    Attributes:
        state: ``"open"`` until observed (then ``"closed"``), or ``"expired"``
            when its lease ran out first (an observation is still accepted).
        expire_time: When an open suggestion expires unless observed or
            renewed (:meth:`Connection.renew_lease`).
        lease_seconds: Length of its lease; a renewal extends it by this much
            unless told otherwise.
    """

    id: str = ""
    experiment_id: str = ""
    assignments: Assignments = field(default_factory=Assignments)
    state: str | None = None
    metadata: dict[str, Any] | None = None
    create_time: datetime | None = None
    expire_time: datetime | None = None
    lease_seconds: int | None = None


@dataclass
class Progress(_Base):
    """Counters of an experiment."""

    observation_count: int = 0
    failed_observation_count: int = 0
    open_suggestion_count: int = 0
    best_observation: Observation | None = None
    observation_budget_consumed: int = 0
    first_observation: Observation | None = None
    last_observation: Observation | None = None
    total_run_count: int = 0
    finished_run_count: int = 0
    active_run_count: int = 0


@dataclass
class Experiment(_Base):
    """An optimization experiment, as stored by the service.

    ``budget`` is an alias of ``observation_budget`` (the AI module's name).
    ``suggestion_lease_seconds`` is how long its suggestions stay open without
    an observation or a renewal (the server's default, a day, when None).
    """

    id: str = ""
    name: str = ""
    project: str = ""
    type: str = "offline"
    parameters: list[Parameter] = field(default_factory=list)
    conditionals: list[Conditional] = field(default_factory=list)
    linear_constraints: list[LinearConstraint] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    observation_budget: int | None = None
    parallel_bandwidth: int = 1
    num_solutions: int = 1
    metadata: dict[str, Any] | None = None
    state: str = "active"
    create_time: datetime | None = None
    update_time: datetime | None = None
    progress: Progress = field(default_factory=Progress)
    seed: int | None = None
    suggestion_lease_seconds: int | None = None
    runs_only: bool = False

    @property
    def budget(self) -> int | None:
        """Alias of ``observation_budget``."""
        return self.observation_budget


@dataclass
class QueuedSuggestion(_Base):
    """Assignments waiting to be served as the experiment's next suggestion."""

    id: str = ""
    experiment_id: str = ""
    assignments: Assignments = field(default_factory=Assignments)
    create_time: datetime | None = None


@dataclass
class Project(_Base):
    """A named group of experiments and training runs (``id``: ``[a-z0-9._-]``)."""

    id: str = ""
    name: str = ""
    metadata: dict[str, Any] | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass
class RunValue(_Base):
    """A metric value logged on a training run or checkpoint."""

    value: float
    value_stddev: float | None = None


@dataclass
class Checkpoint(_Base):
    """Values logged during a training run; ``id`` counts from ``"1"``."""

    id: str = ""
    values: dict[str, RunValue] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    create_time: datetime | None = None


@dataclass
class TrainingRun(_Base):
    """One evaluation as the server stores it (SigOpt's training run).

    A run of a runs-only experiment carries the assignments of the suggestion
    made for it; once it ends (``state`` ``"completed"`` or ``"failed"``) the
    server reports its observation (``observation_id``).

    Attributes:
        values: Metric name -> logged value.
        extras: Logged documents (logs, datasets, model, source_code,
            sys_metadata, dev_metadata, tags).
        deleted: Soft-deleted (archived); still readable.
    """

    id: str = ""
    project: str = ""
    name: str = ""
    experiment_id: str | None = None
    suggestion_id: str | None = None
    observation_id: str | None = None
    state: str = "active"
    assignments: Assignments = field(default_factory=Assignments)
    values: dict[str, RunValue] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    extras: dict[str, Any] | None = None
    deleted: bool = False
    checkpoints: list[Checkpoint] = field(default_factory=list)
    create_time: datetime | None = None
    update_time: datetime | None = None
    complete_time: datetime | None = None

    @property
    def params(self) -> Assignments:
        """Alias of ``assignments`` (the AI module's name)."""
        return self.assignments

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    @property
    def value(self) -> float | None:
        """The value of the only metric logged, None when not exactly one."""
        return next(iter(self.values.values())).value if len(self.values) == 1 else None

    def metric(self, name: str) -> float | None:
        """The logged value of metric ``name``, None when absent."""
        logged = self.values.get(name)
        return None if logged is None else logged.value


@dataclass
class Page(_Base, Generic[T]):
    """One page of a list call; iterable over its items."""

    data: list[T]
    next_page_token: str = ""

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


@dataclass
class BestAssignments(_Base):
    """The best observations so far (``data``), or why there are none (``explanation``).

    ``data`` holds one observation for a single optimized metric, the Pareto
    front for two, and up to ``num_solutions`` separated solutions for a
    multisolution experiment; only successful observations that satisfy every
    constraint metric count. When it is empty, ``explanation`` says why (e.g.
    no observation satisfies the constraint metrics' thresholds). Iterable,
    indexable and sized like the list it wraps.
    """

    data: list[Observation]
    explanation: str = ""

    def __iter__(self) -> Iterator[Observation]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Observation:
        return self.data[index]

    @property
    def assignments(self) -> list[Assignments]:
        """The assignments of ``data``, in the same order."""
        return [o.assignments for o in self.data]


@dataclass
class BestRuns(_Base):
    """The training runs of an experiment's best assignments (``data``), or
    why there are none (``explanation``); list-like, as :class:`BestAssignments`."""

    data: list[TrainingRun]
    explanation: str = ""

    def __iter__(self) -> Iterator[TrainingRun]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> TrainingRun:
        return self.data[index]

    @property
    def assignments(self) -> list[Assignments]:
        """The assignments of ``data``, in the same order."""
        return [r.assignments for r in self.data]


@dataclass
class StoppingCriteria(_Base):
    """Whether an experiment may stop: ``reasons`` holds
    ``"observation_budget_reached"`` and/or ``"possible_stagnation"``."""

    should_stop: bool
    reasons: list[str]
