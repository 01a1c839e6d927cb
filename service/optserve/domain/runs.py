"""Projects and training runs (SigOpt's AI module): plain dataclasses.

A project groups experiments and runs under a client-chosen id. A training run
records one evaluation: its parameters, metric values and logs; a run of a
runs-only experiment carries a suggestion's assignments and, once completed or
failed, is reported to the experiment as an observation.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .errors import FieldViolation, InvalidArgument
from .limits import (
    MAX_CATEGORICAL_VALUE_LENGTH,
    MAX_CHECKPOINTS_PER_RUN,
    MAX_JSON_DEPTH,
    MAX_NAME_LENGTH,
    MAX_PARAMETERS,
    MAX_PROJECT_LENGTH,
    MAX_RUN_EXTRAS_BYTES,
    MAX_RUN_LOG_LENGTH,
    MAX_RUN_VALUES,
    PROJECT_PATTERN,
)
from .model import Assignments, Experiment, MetricValue, Observation
from .validation import (
    MAX_REPORTED_VIOLATIONS,
    NO_CONTROL,
    has_control,
    map_key,
    metadata_violations,
)

_PROJECT = re.compile(PROJECT_PATTERN)


class RunState(enum.Enum):
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass
class Project:
    id: str
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass
class RunValue:
    value: float
    stddev: float | None = None


@dataclass
class Checkpoint:
    id: str
    values: dict[str, RunValue]
    metadata: dict[str, Any] = field(default_factory=dict)
    create_time: datetime | None = None


@dataclass
class TrainingRun:
    id: str
    project: str
    name: str = ""
    # the runs-only experiment it belongs to, its suggestion and, once it ended, its observation
    experiment_id: str | None = None
    suggestion_id: str | None = None
    observation_id: str | None = None
    state: RunState = RunState.ACTIVE
    assignments: Assignments = field(default_factory=dict)
    values: dict[str, RunValue] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # free-form documents the client logs: logs, datasets, model, source_code,
    # sys_metadata, dev_metadata, tags, assignments_meta, assignments_sources
    extras: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    checkpoints: list[Checkpoint] = field(default_factory=list)
    create_time: datetime | None = None
    update_time: datetime | None = None
    complete_time: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.state is not RunState.ACTIVE


# What a change of a run writes: the run as it becomes and, when it ends a run
# of an experiment, the observation that reports it.
RunChange = tuple[TrainingRun, Observation | None]


@dataclass
class RunPatch:
    """The fields a run update names (None: not named). ``extras`` holds the named
    free-form documents (see ``EXTRA_FIELDS``)."""

    name: str | None = None
    state: RunState | None = None
    deleted: bool | None = None
    assignments: Assignments | None = None
    values: dict[str, RunValue] | None = None
    metadata: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


# Documents a client logs on a run, kept as given (merged by MERGE).
EXTRA_FIELDS = (
    "logs",
    "datasets",
    "model",
    "source_code",
    "sys_metadata",
    "dev_metadata",
    "tags",
    "assignments_meta",
    "assignments_sources",
    "favorite",
)


def merged(old: Any, new: Any) -> Any:
    """``new`` merged into ``old``: maps recursively, anything else replaced."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for key, value in new.items():
            out[key] = merged(old.get(key), value)
        return out
    return new


def _check_values(values: dict[str, RunValue], path: str) -> list[FieldViolation]:
    out = []
    if len(values) > MAX_RUN_VALUES:
        return [FieldViolation(path, f"at most {MAX_RUN_VALUES} metric values")]
    for name, v in values.items():
        vpath = f"{path}{map_key(name)}"
        if not name or len(name) > MAX_NAME_LENGTH:
            out.append(
                FieldViolation(vpath, f"a metric name has 1 to {MAX_NAME_LENGTH} characters")
            )
        if not _finite(v.value):
            out.append(FieldViolation(f"{vpath}.value", "must be a finite number"))
        if v.stddev is not None and not (_finite(v.stddev) and v.stddev >= 0):
            out.append(FieldViolation(f"{vpath}.value_stddev", "must be a finite number >= 0"))
    return out


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def apply_patch(run: TrainingRun, patch: RunPatch, merge: bool, fixed: set[str]) -> TrainingRun:
    """The run after a PUT (``merge`` False: named maps replaced) or a MERGE (maps
    merged recursively). ``fixed``: assignment names a suggestion set, which keep
    their values.

    Raises:
        InvalidArgument: naming each broken rule.
    """
    out = replace(run)
    bad: list[FieldViolation] = []
    if patch.name is not None:
        out.name = patch.name
    if patch.state is not None:
        if run.finished and patch.state is RunState.ACTIVE:
            bad.append(FieldViolation("state", "a completed or failed run cannot become active"))
        out.state = patch.state
    if patch.deleted is not None:
        out.deleted = patch.deleted
    if patch.assignments is not None:
        for name in fixed:
            if name in patch.assignments and patch.assignments[name] != run.assignments.get(name):
                bad.append(
                    FieldViolation(
                        f"assignments{map_key(name)}", "set by the run's suggestion: cannot change"
                    )
                )
        if merge:
            out.assignments = {**run.assignments, **patch.assignments}
        else:
            out.assignments = {**patch.assignments, **{k: run.assignments[k] for k in fixed}}
    if patch.values is not None:
        out.values = {**run.values, **patch.values} if merge else dict(patch.values)
    if patch.metadata is not None:
        out.metadata = merged(run.metadata, patch.metadata) if merge else patch.metadata
    if patch.extras:
        out.extras = dict(run.extras)
        for key, value in patch.extras.items():
            out.extras[key] = merged(run.extras.get(key), value) if merge else value
    bad += _run_violations(out)
    if bad:
        raise InvalidArgument(bad[:MAX_REPORTED_VIOLATIONS])
    return out


def _run_violations(run: TrainingRun) -> list[FieldViolation]:
    bad = []
    if len(run.name) > MAX_NAME_LENGTH:
        bad.append(FieldViolation("name", f"at most {MAX_NAME_LENGTH} characters"))
    elif has_control(run.name):
        bad.append(FieldViolation("name", f"a run name {NO_CONTROL}"))
    bad += metadata_violations(run.metadata, "metadata")
    bad += _check_values(run.values, "values")
    if len(run.assignments) > MAX_PARAMETERS * 2:
        bad.append(FieldViolation("assignments", f"at most {MAX_PARAMETERS * 2} assignments"))
    for name, value in run.assignments.items():
        if not name or len(name) > MAX_NAME_LENGTH:
            bad.append(
                FieldViolation(
                    f"assignments{map_key(name)}", f"a name has 1 to {MAX_NAME_LENGTH} characters"
                )
            )
        if isinstance(value, str) and len(value) > MAX_CATEGORICAL_VALUE_LENGTH:
            bad.append(
                FieldViolation(
                    f"assignments{map_key(name)}",
                    f"a string value has at most {MAX_CATEGORICAL_VALUE_LENGTH} characters",
                )
            )
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            bad.append(FieldViolation(f"assignments{map_key(name)}", "a number or a string"))
        elif isinstance(value, float) and not math.isfinite(value):
            bad.append(FieldViolation(f"assignments{map_key(name)}", "must be finite"))
    logs = run.extras.get("logs")
    if isinstance(logs, dict):
        for stream, entry in logs.items():
            content = entry.get("content") if isinstance(entry, dict) else None
            if isinstance(content, str) and len(content) > MAX_RUN_LOG_LENGTH:
                bad.append(
                    FieldViolation(
                        f"logs{map_key(str(stream))}.content",
                        f"at most {MAX_RUN_LOG_LENGTH} characters",
                    )
                )
    for key, value in run.extras.items():
        bad += _document_violations(value, key)
    size = len(json.dumps(run.extras, separators=(",", ":")).encode())
    if size > MAX_RUN_EXTRAS_BYTES:
        bad.append(
            FieldViolation(
                "logs",
                f"logs, datasets, model, source code and the like take at most"
                f" {MAX_RUN_EXTRAS_BYTES} bytes as JSON (got {size})",
            )
        )
    return bad


def _document_violations(doc: object, path: str) -> list[FieldViolation]:
    """A free-form document's numbers are finite and its arrays and objects nest at
    most ``MAX_JSON_DEPTH`` deep (what both transports can carry back)."""
    bad: list[FieldViolation] = []
    stack: list[tuple[object, str, int]] = [(doc, path, 1)]
    while stack and len(bad) < MAX_REPORTED_VIOLATIONS:
        node, where, level = stack.pop()
        if isinstance(node, dict | list):
            if level > MAX_JSON_DEPTH:
                bad.append(FieldViolation(where, f"nests at most {MAX_JSON_DEPTH} levels deep"))
                continue
            items = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend((child, f"{where}[{key!r}]", level + 1) for key, child in items)
        elif isinstance(node, float) and not math.isfinite(node):
            bad.append(FieldViolation(where, "a number must be finite"))
    return bad


def validate_run(run: TrainingRun) -> None:
    bad = _run_violations(run)
    if bad:
        raise InvalidArgument(bad[:MAX_REPORTED_VIOLATIONS])


def validate_project(project: Project) -> None:
    bad = []
    if not project.id:
        bad.append(FieldViolation("id", "required: a project id"))
    elif len(project.id) > MAX_PROJECT_LENGTH or not _PROJECT.fullmatch(project.id):
        bad.append(
            FieldViolation(
                "id",
                f"1 to {MAX_PROJECT_LENGTH} of the characters a-z 0-9 . _ - (lowercase)",
            )
        )
    if not project.name:
        bad.append(FieldViolation("name", "required: a project name"))
    elif len(project.name) > MAX_NAME_LENGTH:
        bad.append(FieldViolation("name", f"at most {MAX_NAME_LENGTH} characters"))
    elif has_control(project.name):
        bad.append(FieldViolation("name", f"a project name {NO_CONTROL}"))
    bad += metadata_violations(project.metadata, "metadata")
    if bad:
        raise InvalidArgument(bad)


def new_checkpoint(
    run: TrainingRun, values: dict[str, RunValue], metadata: dict[str, Any]
) -> Checkpoint:
    """The run's next checkpoint. Raises InvalidArgument past the limit or for bad values."""
    bad = _check_values(values, "values") + metadata_violations(metadata, "metadata")
    if len(run.checkpoints) >= MAX_CHECKPOINTS_PER_RUN:
        bad.append(FieldViolation("checkpoints", f"at most {MAX_CHECKPOINTS_PER_RUN} per run"))
    if bad:
        raise InvalidArgument(bad)
    return Checkpoint(
        id=str(len(run.checkpoints) + 1),
        values=values,
        metadata=metadata,
        create_time=datetime.now(UTC),
    )


def observation_of(exp: Experiment, run: TrainingRun) -> Observation:
    """What an ended run reports to its experiment: its values of the
    experiment's metrics when it completed with every required one, else a failure."""
    values = [
        MetricValue(m.name, run.values[m.name].value, run.values[m.name].stddev)
        for m in exp.metrics
        if m.name in run.values
    ]
    reported = {v.name for v in values}
    ok = run.state is RunState.COMPLETED and all(m.name in reported for m in exp.required_metrics)
    # a suggestion's assignments are fixed on its run: the run's own are the suggestion's
    names = {p.name for p in exp.parameters} | {k.name for k in exp.conditionals}
    return Observation(
        id="",
        experiment_id=exp.id,
        suggestion_id=run.suggestion_id,
        assignments={k: v for k, v in run.assignments.items() if k in names},
        values=values if ok else [],
        failed=not ok,
    )
