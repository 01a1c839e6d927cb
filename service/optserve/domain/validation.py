"""Every rule an experiment and an observation must follow, with field-level errors.

Rules follow SigOpt's documented behaviour (limits on metrics, conditionals and
linear constraints); every size limit is a named constant of ``limits``. Each
check appends a ``FieldViolation`` so that a client sees every broken rule of a
request at once. A map key in a field path is quoted: ``assignments["x"]``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

import numpy as np
from scipy.optimize import Bounds as LpBounds
from scipy.optimize import LinearConstraint as LpConstraint
from scipy.optimize import milp

from . import geometry
from .errors import FieldViolation, InvalidArgument
from .geometry import constraint_system
from .limits import (
    MAX_ABS_CONSTRAINT_WEIGHT,
    MAX_ABS_PARAMETER_VALUE,
    MAX_ASSIGNMENTS_BYTES,
    MAX_CATEGORICAL_VALUE_LENGTH,
    MAX_CATEGORICAL_VALUES,
    MAX_CONDITIONAL_COMBINATIONS,
    MAX_CONDITIONAL_PARAMETERS,
    MAX_CONDITIONAL_VALUES,
    MAX_CONDITIONALS,
    MAX_CONSTRAINED_INT_PARAMETERS,
    MAX_CONSTRAINT_METRICS,
    MAX_GRID_SIZE,
    MAX_GRID_VALUES,
    MAX_LINEAR_CONSTRAINTS,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_STRING_LENGTH,
    MAX_METRICS,
    MAX_NAME_LENGTH,
    MAX_OPTIMIZED_METRICS,
    MAX_PARALLEL_BANDWIDTH,
    MAX_PARAMETERS,
    MAX_PROJECT_LENGTH,
    MAX_SPACE_DIMENSIONS,
    MIN_BOUNDS_WIDTH,
    PROJECT_PATTERN,
)
from .model import (
    Assignments,
    ConstraintType,
    Experiment,
    ExperimentType,
    MetricValue,
    Observation,
    Parameter,
    ParameterType,
    PriorType,
    Strategy,
)

# Smallest ball (parameters scaled to [0, 1]) the double constraints must leave room for.
MIN_INTERIOR_RADIUS = 1e-7

# A request breaking many rules reports this many, so that the status stays small.
MAX_REPORTED_VIOLATIONS = 10
_PROJECT = re.compile(PROJECT_PATTERN)


def map_key(key: str) -> str:
    """A map key as it appears in a field path: ``["key"]`` (long keys shortened)."""
    shown = key if len(key) <= MAX_NAME_LENGTH else key[:MAX_NAME_LENGTH] + "..."
    return "[" + json.dumps(shown, ensure_ascii=False) + "]"


def quote(value: str) -> str:
    """A user-given string inside an error description, shortened when long."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


class _Collector:
    """Gathers violations under a field-path prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.violations: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        sep = "" if not path or path.startswith("[") else "."
        full = f"{self.prefix}{sep}{path}"
        if len(self.violations) < MAX_REPORTED_VIOLATIONS:
            self.violations.append(FieldViolation(full, description))

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


# Names are printed by terminals, logs and pages (an escape sequence in one would
# drive an operator's terminal), and PostgreSQL text cannot hold NUL: names and
# categorical values hold no control characters.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
NO_CONTROL = "may not contain control characters (U+0000-U+001F, U+007F-U+009F)"


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character."""
    return _CONTROL.search(text) is not None


def _check_name(c: _Collector, path: str, name: str, what: str) -> None:
    if not name:
        c.add(path, f"a {what} name is required")
    elif len(name) > MAX_NAME_LENGTH:
        c.add(path, f"a name has at most {MAX_NAME_LENGTH} characters (got {len(name)})")
    elif has_control(name):
        c.add(path, f"the {what} name {NO_CONTROL}")


def _too_many(c: _Collector, path: str, items: list, limit: int, what: str) -> bool:
    """Reports a list longer than ``limit``; its items are then not checked one by one."""
    if len(items) <= limit:
        return False
    c.add(path, f"at most {limit} {what} (got {len(items)})")
    return True


def _check_strings(c: _Collector, path: str, values: list[str], what: str) -> None:
    if any(not v for v in values):
        c.add(path, f"{what} must be non-empty strings")
    if any(len(v) > MAX_CATEGORICAL_VALUE_LENGTH for v in values):
        c.add(path, f"{what} have at most {MAX_CATEGORICAL_VALUE_LENGTH} characters each")
    if len(set(values)) != len(values):
        c.add(path, f"{what} must be unique")
    if any(has_control(v) for v in values):
        c.add(path, f"{what} {NO_CONTROL}")


# ---------------------------------------------------------------- metadata


def metadata_violations(metadata: dict[str, Any], prefix: str) -> list[FieldViolation]:
    """Broken metadata rules: SigOpt's key count and lengths, and values that are
    strings, finite numbers or null."""
    c = _Collector(prefix)
    if len(metadata) > MAX_METADATA_KEYS:
        c.add("", f"at most {MAX_METADATA_KEYS} keys (got {len(metadata)})")
        return c.violations
    for key, value in metadata.items():
        path = map_key(key)
        if len(key) > MAX_METADATA_KEY_LENGTH:
            c.add(path, f"a metadata key has at most {MAX_METADATA_KEY_LENGTH} characters")
        if value is None:
            continue
        if isinstance(value, str):
            if len(value) > MAX_METADATA_STRING_LENGTH:
                c.add(path, f"a string value has at most {MAX_METADATA_STRING_LENGTH} characters")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                c.add(path, "a number must be finite")
        else:
            c.add(path, "a metadata value is a string, a number or null")
    return c.violations


def validate_metadata(metadata: dict[str, Any], prefix: str) -> None:
    """Raises:
    InvalidArgument: when ``metadata`` breaks a rule of ``metadata_violations``."""
    violations = metadata_violations(metadata, prefix)
    if violations:
        raise InvalidArgument(violations)


# ---------------------------------------------------------------- experiments


def validate_experiment(exp: Experiment, prefix: str = "experiment") -> None:
    """Checks every rule of an experiment definition.

    Raises:
        InvalidArgument: listing every violated rule with its field path.
    """
    c = _Collector(prefix)
    if not exp.name:
        c.add("name", "required: an experiment needs a name")
    else:
        _check_name(c, "name", exp.name, "experiment")
    if len(exp.project) > MAX_PROJECT_LENGTH:
        c.add("project", f"a project name has at most {MAX_PROJECT_LENGTH} characters")
    elif exp.project and not _PROJECT.fullmatch(exp.project):
        c.add("project", f"a project name is made of the characters {PROJECT_PATTERN[:-1]}")
    for v in metadata_violations(exp.metadata, f"{prefix}.metadata"):
        c.violations.append(v)
    _check_parameters(c, exp)
    _check_conditionals(c, exp)
    _check_metrics(c, exp)
    _check_counts(c, exp)
    if not c.violations:
        _check_space_size(c, exp)
    # Constraint geometry is only meaningful once the parameters themselves are valid.
    if not c.violations:
        _check_linear_constraints(c, exp)
    if not c.violations:
        _check_grid(c, exp)
    c.raise_if_any()


def _check_parameters(c: _Collector, exp: Experiment) -> None:
    if not exp.parameters:
        c.add("parameters", "at least one parameter is required")
    if _too_many(c, "parameters", exp.parameters, MAX_PARAMETERS, "parameters"):
        return
    conditional_names = {k.name for k in exp.conditionals}
    seen: set[str] = set()
    for i, p in enumerate(exp.parameters):
        path = f"parameters[{i}]"
        _check_name(c, f"{path}.name", p.name, "parameter")
        if p.name in seen:
            c.add(f"{path}.name", f"duplicate parameter name {quote(p.name)}: names must be unique")
        elif p.name in conditional_names:
            c.add(
                f"{path}.name",
                f"{quote(p.name)} is also a conditional's name: names must be unique",
            )
        seen.add(p.name)
        if p.type is None:
            c.add(f"{path}.type", "required: one of double, int, categorical")
            continue
        if p.type is ParameterType.CATEGORICAL:
            _check_categorical(c, path, p)
        else:
            _check_numeric(c, path, p, exp.type)
        _check_conditions(c, path, p, exp)
        if p.prior is not None:
            _check_prior(c, path, p)
        if p.default_value is not None:
            _check_default_value(c, path, p)


def _check_categorical(c: _Collector, path: str, p: Parameter) -> None:
    if p.bounds is not None:
        c.add(f"{path}.bounds", "a categorical parameter has no bounds")
    if p.grid:
        c.add(f"{path}.grid", "a categorical parameter's grid is its categorical_values")
    if p.is_log:
        c.add(f"{path}.transformation", "only double and int parameters may be log-scaled")
    values = p.categorical_values
    vpath = f"{path}.categorical_values"
    if len(values) < 2:
        c.add(vpath, "a categorical parameter needs at least 2 values")
    if not _too_many(c, vpath, values, MAX_CATEGORICAL_VALUES, "categorical values"):
        _check_strings(c, vpath, values, "categorical values")


def _check_numeric(c: _Collector, path: str, p: Parameter, kind: ExperimentType) -> None:
    assert p.type is not None
    if p.categorical_values:
        c.add(f"{path}.categorical_values", f"a {p.type.value} parameter has no categorical values")
    b = p.bounds
    limit = f"{MAX_ABS_PARAMETER_VALUE:.0f} (2^52)"
    if b is None:
        if not p.grid:
            c.add(f"{path}.bounds", f"required: a {p.type.value} parameter needs bounds")
    elif not (_finite(b.min) and _finite(b.max)):
        c.add(f"{path}.bounds", "bounds must be finite numbers")
    elif max(abs(b.min), abs(b.max)) > MAX_ABS_PARAMETER_VALUE:
        c.add(f"{path}.bounds", f"bounds lie within -{limit} and {limit}")
    else:
        if p.type is ParameterType.INT and (b.min != round(b.min) or b.max != round(b.max)):
            c.add(f"{path}.bounds", "an int parameter's bounds must be integers")
        if not b.min < b.max:
            c.add(
                f"{path}.bounds", f"min ({_exact(b.min)}) must be less than max ({_exact(b.max)})"
            )
        elif b.max - b.min < MIN_BOUNDS_WIDTH:
            c.add(f"{path}.bounds", f"bounds must be at least {MIN_BOUNDS_WIDTH:g} apart")
        if p.is_log and b.min <= 0:
            c.add(f"{path}.transformation", "a log-scaled parameter needs bounds.min > 0")
    if p.grid:
        gpath = f"{path}.grid"
        if _too_many(c, gpath, p.grid, MAX_GRID_VALUES, "grid values"):
            return
        if not all(_finite(v) for v in p.grid):
            c.add(gpath, "grid values must be finite numbers")
            return
        if any(abs(v) > MAX_ABS_PARAMETER_VALUE for v in p.grid):
            c.add(gpath, f"grid values lie within -{limit} and {limit}")
            return
        if len(set(p.grid)) != len(p.grid):
            c.add(gpath, "grid values must be unique")
        if p.type is ParameterType.INT and any(v != round(v) for v in p.grid):
            c.add(gpath, "an int parameter's grid values must be integers")
        if b is not None and any(not b.min <= v <= b.max for v in p.grid):
            c.add(gpath, "grid values must lie within the bounds")
        if p.is_log and any(v <= 0 for v in p.grid):
            c.add(gpath, "a log-scaled parameter's grid values must be > 0")
    elif kind is ExperimentType.GRID and p.type is ParameterType.DOUBLE:
        c.add(f"{path}.grid", "required: a double parameter of a grid experiment needs a grid")


def _check_prior(c: _Collector, path: str, p: Parameter) -> None:
    """SigOpt's rules: doubles only, not log-scaled, no grid; normal's mean within
    the bounds and scale > 0; beta's shapes > 0."""
    prior, ppath = p.prior, f"{path}.prior"
    assert prior is not None
    if p.type is not ParameterType.DOUBLE:
        c.add(ppath, "only double parameters take a prior")
        return
    if p.is_log:
        c.add(ppath, "a log-scaled parameter takes no prior")
    if p.grid:
        c.add(ppath, "a parameter with a grid takes no prior")
    if prior.type is PriorType.NORMAL:
        if prior.shape_a is not None or prior.shape_b is not None:
            c.add(ppath, "a normal prior has a mean and a scale, no shapes")
        if not _finite(prior.mean):
            c.add(f"{ppath}.mean", "required: a finite number")
        elif p.bounds is not None and not p.bounds.min <= prior.mean <= p.bounds.max:  # type: ignore[operator]
            c.add(f"{ppath}.mean", "must lie within the parameter's bounds")
        if not (_finite(prior.scale) and prior.scale > 0):  # type: ignore[operator]
            c.add(f"{ppath}.scale", "required: a finite number > 0")
    elif prior.type is PriorType.BETA:
        if prior.mean is not None or prior.scale is not None:
            c.add(ppath, "a beta prior has shape_a and shape_b, no mean or scale")
        for name in ("shape_a", "shape_b"):
            v = getattr(prior, name)
            if not (_finite(v) and v > 0):
                c.add(f"{ppath}.{name}", "required: a finite number > 0")
    else:
        c.add(f"{ppath}.name", "required: normal or beta")


def _check_default_value(c: _Collector, path: str, p: Parameter) -> None:
    v, dpath = p.default_value, f"{path}.default_value"
    if p.type is ParameterType.CATEGORICAL:
        if not isinstance(v, str) or v not in p.categorical_values:
            c.add(dpath, "must be one of the parameter's categorical_values")
        return
    if isinstance(v, str) or not _finite(v):
        c.add(dpath, "must be a finite number")
        return
    assert v is not None and not isinstance(v, str)
    if p.type is ParameterType.INT and v != round(v):
        c.add(dpath, "an int parameter's default_value is an integer")
    if p.bounds is not None and not p.bounds.min <= v <= p.bounds.max:
        c.add(dpath, "must lie within the parameter's bounds")
    if p.grid and v not in p.grid:
        c.add(dpath, "must be one of the parameter's grid values")
    if p.is_log and v <= 0:
        c.add(dpath, "a log-scaled parameter's default_value must be > 0")


def _check_conditions(c: _Collector, path: str, p: Parameter, exp: Experiment) -> None:
    by_name = {k.name: set(k.values) for k in exp.conditionals}
    if _too_many(c, f"{path}.conditions", list(p.conditions), MAX_CONDITIONALS, "conditions"):
        return
    for name, values in p.conditions.items():
        cpath = f"{path}.conditions{map_key(name)}"
        conditional = by_name.get(name)
        if conditional is None:
            c.add(cpath, f"{quote(name)} is not a conditional of the experiment")
            continue
        if not values:
            c.add(cpath, "a condition needs at least one value")
        for v in values:
            if v not in conditional:
                c.add(cpath, f"{quote(v)} is not a value of conditional {quote(name)}")
                break


def _check_conditionals(c: _Collector, exp: Experiment) -> None:
    if not exp.conditionals:
        return
    if _too_many(c, "conditionals", exp.conditionals, MAX_CONDITIONALS, "conditionals"):
        return
    seen: set[str] = set()
    for i, k in enumerate(exp.conditionals):
        path = f"conditionals[{i}]"
        _check_name(c, f"{path}.name", k.name, "conditional")
        if k.name in seen:
            c.add(f"{path}.name", f"duplicate conditional name {quote(k.name)}")
        seen.add(k.name)
        if not k.values:
            c.add(f"{path}.values", "a conditional needs at least one value")
        if not _too_many(c, f"{path}.values", k.values, MAX_CONDITIONAL_VALUES, "values"):
            _check_strings(c, f"{path}.values", k.values, "conditional values")
    if exp.type is not ExperimentType.OFFLINE:
        c.add("type", "an experiment with conditionals must be of type offline")
    if len(exp.parameters) > MAX_CONDITIONAL_PARAMETERS:
        c.add(
            "parameters",
            f"an experiment with conditionals has at most {MAX_CONDITIONAL_PARAMETERS} parameters",
        )
    if len(exp.optimized_metrics) > 1:
        c.add("metrics", "an experiment with conditionals optimizes exactly one metric")
    if exp.num_solutions > 1:
        c.add("num_solutions", "an experiment with conditionals cannot have num_solutions > 1")
    if c.violations:
        return
    combinations = math.prod(len(k.values) for k in exp.conditionals)
    if combinations > MAX_CONDITIONAL_COMBINATIONS:
        c.add(
            "conditionals",
            f"at most {MAX_CONDITIONAL_COMBINATIONS} combinations of conditional values "
            f"(got {combinations})",
        )
        return
    # Every combination of conditional values must switch on at least one parameter.
    for combo in itertools.product(*[[(k.name, v) for v in k.values] for k in exp.conditionals]):
        assignment: Assignments = dict(combo)
        if not any(p.is_active(assignment) for p in exp.parameters):
            desc = ", ".join(f"{n}={v}" for n, v in combo)
            c.add("conditionals", f"no parameter is active when {desc}")
            break


def _check_metrics(c: _Collector, exp: Experiment) -> None:
    n = len(exp.metrics)
    if not 1 <= n <= MAX_METRICS:
        c.add("metrics", f"an experiment has between 1 and {MAX_METRICS} metrics (got {n})")
        if n > MAX_METRICS:
            return
    seen: set[str] = set()
    for i, m in enumerate(exp.metrics):
        path = f"metrics[{i}]"
        _check_name(c, f"{path}.name", m.name, "metric")
        if m.name in seen:
            c.add(f"{path}.name", f"duplicate metric name {quote(m.name)}")
        seen.add(m.name)
        if m.threshold is not None and not _finite(m.threshold):
            c.add(f"{path}.threshold", "a threshold must be a finite number")
        if m.strategy is Strategy.CONSTRAINT and m.threshold is None:
            c.add(f"{path}.threshold", "required: a constraint metric needs a threshold")
        if m.strategy is Strategy.STORE and m.threshold is not None:
            c.add(f"{path}.threshold", "a stored metric has no threshold")
    optimized = exp.optimized_metrics
    if n and not optimized:
        c.add("metrics", "at least one metric must have strategy optimize")
    if len(optimized) > MAX_OPTIMIZED_METRICS:
        c.add("metrics", f"at most {MAX_OPTIMIZED_METRICS} metrics may have strategy optimize")
    if len(optimized) == 1 and optimized[0].threshold is not None:
        i = exp.metrics.index(optimized[0])
        c.add(
            f"metrics[{i}].threshold",
            "a threshold is only allowed on an optimized metric of a two-metric experiment",
        )
    if len(exp.constraint_metrics) > MAX_CONSTRAINT_METRICS:
        c.add("metrics", f"at most {MAX_CONSTRAINT_METRICS} metrics may have strategy constraint")
    if exp.observation_budget is None:
        if len(optimized) > 1:
            c.add("observation_budget", "required: an experiment with two optimized metrics")
        if exp.constraint_metrics:
            c.add("observation_budget", "required: an experiment with constraint metrics")


def _check_counts(c: _Collector, exp: Experiment) -> None:
    if exp.observation_budget is not None and exp.observation_budget < 1:
        c.add("observation_budget", "must be at least 1")
    if not 1 <= exp.parallel_bandwidth <= MAX_PARALLEL_BANDWIDTH:
        c.add("parallel_bandwidth", f"must be between 1 and {MAX_PARALLEL_BANDWIDTH}")
    if exp.num_solutions < 1:
        c.add("num_solutions", "must be at least 1")
    if exp.num_solutions > 1:
        if exp.observation_budget is None:
            c.add("observation_budget", "required: an experiment with num_solutions > 1")
        elif exp.num_solutions > exp.observation_budget:
            c.add("num_solutions", "cannot exceed the observation budget")
        if any(p.type is ParameterType.CATEGORICAL for p in exp.parameters):
            c.add("num_solutions", "an experiment with num_solutions > 1 has no categoricals")
        if len(exp.optimized_metrics) > 1:
            c.add("num_solutions", "an experiment with num_solutions > 1 optimizes one metric")


def space_dimensions(exp: Experiment) -> int:
    """Columns of the model's input (see ``limits.MAX_SPACE_DIMENSIONS``)."""
    columns = sum(len(p.categorical_values) if not p.is_numeric else 1 for p in exp.parameters)
    return columns + sum(len(k.values) for k in exp.conditionals)


def assignments_size(exp: Experiment) -> int:
    """Bytes of the largest assignments of a suggestion: every name with its
    longest value (8 bytes for a number), plus 16 bytes each."""
    size = 0
    for p in exp.parameters:
        longest = max((len(v.encode()) for v in p.categorical_values), default=8)
        size += len(p.name.encode()) + longest + 16
    for k in exp.conditionals:
        size += len(k.name.encode()) + max((len(v.encode()) for v in k.values), default=0) + 16
    return size


def _check_space_size(c: _Collector, exp: Experiment) -> None:
    dimensions = space_dimensions(exp)
    if dimensions > MAX_SPACE_DIMENSIONS:
        c.add(
            "parameters",
            f"at most {MAX_SPACE_DIMENSIONS} dimensions: one per double or int parameter and "
            f"one per value of each categorical parameter and conditional (got {dimensions})",
        )
    size = assignments_size(exp)
    if size > MAX_ASSIGNMENTS_BYTES:
        c.add(
            "parameters",
            f"a suggestion's assignments (names and longest values) take at most "
            f"{MAX_ASSIGNMENTS_BYTES} bytes as UTF-8 (got {size}); use shorter names",
        )


def _check_linear_constraints(c: _Collector, exp: Experiment) -> None:
    if not exp.linear_constraints:
        return
    if exp.type not in (ExperimentType.OFFLINE, ExperimentType.RANDOM):
        c.add("linear_constraints", "only offline and random experiments take linear constraints")
    if _too_many(
        c, "linear_constraints", exp.linear_constraints, MAX_LINEAR_CONSTRAINTS, "constraints"
    ):
        return
    int_names: set[str] = set()
    for i, lc in enumerate(exp.linear_constraints):
        path = f"linear_constraints[{i}]"
        if lc.type is None:
            c.add(f"{path}.type", "required: less_than or greater_than")
        if not _finite(lc.threshold):
            c.add(f"{path}.threshold", "a threshold must be a finite number")
        if len(lc.terms) < 2:
            c.add(f"{path}.terms", "a constraint involves at least two parameters")
        if _too_many(c, f"{path}.terms", lc.terms, len(exp.parameters), "terms, one per parameter"):
            continue
        types: set[ParameterType] = set()
        names: set[str] = set()
        for j, t in enumerate(lc.terms):
            tpath = f"{path}.terms[{j}]"
            p = exp.parameter(t.name)
            if t.name in names:
                c.add(f"{tpath}.name", f"parameter {quote(t.name)} appears twice in one constraint")
            names.add(t.name)
            if not _finite(t.weight) or t.weight == 0:
                c.add(f"{tpath}.weight", "a weight must be a non-zero finite number")
            elif abs(t.weight) > MAX_ABS_CONSTRAINT_WEIGHT:
                c.add(f"{tpath}.weight", f"a weight lies within +-{MAX_ABS_CONSTRAINT_WEIGHT:g}")
            if p is None:
                c.add(f"{tpath}.name", f"{quote(t.name)} is not a parameter of the experiment")
                continue
            name = quote(t.name)
            if p.type is ParameterType.CATEGORICAL:
                c.add(f"{tpath}.name", f"{name} is categorical: constraints take double or int")
                continue
            if p.conditions:
                c.add(f"{tpath}.name", f"{name} is conditional: constraints take unconditional")
            if p.is_log:
                c.add(f"{tpath}.name", f"{name} is log-scaled: constraints take linear ones")
            if p.grid:
                c.add(f"{tpath}.name", f"{name} has a grid: constraints take continuous ones")
            if p.bounds is None:
                c.add(f"{tpath}.name", f"{name} has no bounds")
            assert p.type is not None
            types.add(p.type)
        if len(types) > 1:
            c.add(f"{path}.terms", "a constraint cannot mix double and int parameters")
        elif types == {ParameterType.INT}:
            int_names |= names
    if len(int_names) > MAX_CONSTRAINED_INT_PARAMETERS:
        c.add(
            "linear_constraints",
            f"int constraints involve at most {MAX_CONSTRAINED_INT_PARAMETERS} distinct "
            f"parameters (got {len(int_names)})",
        )
    if not c.violations:
        _check_feasible_region(c, exp)


def _check_feasible_region(c: _Collector, exp: Experiment) -> None:
    names, a, b, lo, hi = constraint_system(exp, ParameterType.DOUBLE)
    if names:
        radius = geometry.inscribed_radius(a, b, lo, hi)
        if radius is None:
            c.add("linear_constraints", "the double constraints and bounds admit no feasible point")
        elif radius < MIN_INTERIOR_RADIUS:
            c.add(
                "linear_constraints",
                "the double constraints leave a flat feasible region (they pin a combination "
                "of parameters to a value); use fewer parameters or loosen a threshold",
            )
    names, a, b, lo, hi = constraint_system(exp, ParameterType.INT)
    if names:
        res = milp(
            np.zeros(len(names)),
            constraints=LpConstraint(a, -np.inf, b),
            integrality=np.ones(len(names)),
            bounds=LpBounds(lo, hi),
        )
        if res.status != 0:
            c.add("linear_constraints", "the int constraints and bounds admit no integer point")


def _check_grid(c: _Collector, exp: Experiment) -> None:
    if exp.type is not ExperimentType.GRID:
        return
    size = grid_size(exp)
    if size > MAX_GRID_SIZE:
        c.add("parameters", f"the grid has {size} points, more than {MAX_GRID_SIZE}")
    elif exp.observation_budget is not None and exp.observation_budget > size:
        c.add("observation_budget", f"a grid experiment has at most {size} observations")


def grid_values(p: Parameter) -> list[float | int | str]:
    """The values a grid experiment walks for one parameter."""
    if p.type is ParameterType.CATEGORICAL:
        return list(p.categorical_values)
    if p.grid:
        return [int(v) for v in p.grid] if p.type is ParameterType.INT else list(p.grid)
    assert p.bounds is not None
    return list(range(int(p.bounds.min), int(p.bounds.max) + 1))


def _grid_length(p: Parameter) -> int:
    if p.type is ParameterType.CATEGORICAL:
        return len(p.categorical_values)
    if p.grid:
        return len(p.grid)
    assert p.bounds is not None
    return int(p.bounds.max) - int(p.bounds.min) + 1


def grid_size(exp: Experiment) -> int:
    """Points of the grid, counted without listing them."""
    return math.prod(_grid_length(p) for p in exp.parameters)


# ---------------------------------------------------------------- observations


def validate_assignments(exp: Experiment, assignments: Assignments, prefix: str) -> Assignments:
    """Checks explicit assignments against types, bounds, grids and constraints.

    Returns:
        The assignments with an int parameter's integral float (3.0) as an int,
        as every suggestion gives it.

    Raises:
        InvalidArgument: naming each offending assignment.
    """
    c = _Collector(prefix)
    if exp.conditionals:
        c.add("", "explicit assignments are not supported in experiments with conditionals")
        c.raise_if_any()
    known = {p.name for p in exp.parameters}
    for name in assignments:
        if name not in known:
            c.add(map_key(name), f"{quote(name)} is not a parameter of the experiment")
    for p in exp.parameters:
        path = map_key(p.name)
        if p.name not in assignments:
            c.add(path, f"required: a value for parameter {quote(p.name)}")
            continue
        v = assignments[p.name]
        if p.type is ParameterType.CATEGORICAL:
            if not isinstance(v, str) or v not in p.categorical_values:
                c.add(path, "must be one of the parameter's categorical_values")
            continue
        if isinstance(v, str) or not _finite(v):
            c.add(path, f"a {p.type.value if p.type else ''} parameter needs a finite number")
            continue
        # ints and floats compare exactly: an int beyond 2^53 is not rounded into the bounds
        if p.type is ParameterType.INT and v != round(v):
            c.add(path, "an int parameter needs an integer value")
            continue
        if p.bounds is not None and not p.bounds.min <= v <= p.bounds.max:
            c.add(path, f"must lie within [{_exact(p.bounds.min)}, {_exact(p.bounds.max)}]")
        if p.grid and v not in p.grid:
            c.add(path, "must be one of the parameter's grid values")
    c.raise_if_any()
    for i, lc in enumerate(exp.linear_constraints):
        if not geometry.holds(lc, assignments):
            op = "<=" if lc.type is ConstraintType.LESS_THAN else ">="
            c.add(
                "", f"violates linear_constraints[{i}] (sum of terms {op} {_exact(lc.threshold)})"
            )
    c.raise_if_any()
    ints = {p.name for p in exp.parameters if p.type is ParameterType.INT}
    return {
        name: int(v) if name in ints and isinstance(v, float) else v
        for name, v in assignments.items()
    }


def validate_observation_values(
    exp: Experiment, failed: bool, values: list[MetricValue], prefix: str
) -> None:
    """Checks that the reported values fit the experiment's metrics.

    Raises:
        InvalidArgument: naming each offending value.
    """
    c = _Collector(prefix)
    if failed:
        if values:
            c.add("values", "a failed observation carries no values")
        c.raise_if_any()
        return
    if _too_many(c, "values", values, len(exp.metrics), "values, one per metric"):
        c.raise_if_any()
    seen: set[str] = set()
    for i, mv in enumerate(values):
        path = f"values[{i}]"
        if exp.metric(mv.name) is None:
            c.add(f"{path}.name", f"{quote(mv.name)} is not a metric of the experiment")
        if mv.name in seen:
            c.add(f"{path}.name", f"metric {quote(mv.name)} is reported twice")
        seen.add(mv.name)
        if not _finite(mv.value):
            c.add(f"{path}.value", "must be a finite number")
        if mv.stddev is not None and not (_finite(mv.stddev) and mv.stddev >= 0):
            c.add(f"{path}.value_stddev", "must be a finite number >= 0")
    for m in exp.required_metrics:
        if m.name not in seen:
            c.add("values", f"required: a value for metric {quote(m.name)} (or failed = true)")
    c.raise_if_any()


def validate_observation(exp: Experiment, obs: Observation, prefix: str = "observation") -> None:
    """Checks an observation with explicit assignments (no suggestion) or a suggestion's."""
    if obs.suggestion_id is None:
        if not obs.assignments:
            raise InvalidArgument.single(
                f"{prefix}.suggestion_id", "required: a suggestion_id or explicit assignments"
            )
        obs.assignments = validate_assignments(exp, obs.assignments, f"{prefix}.assignments")
    validate_observation_values(exp, obs.failed, obs.values, prefix)
    validate_metadata(obs.metadata, f"{prefix}.metadata")


def _exact(value: float) -> str:
    """A number for a message: short (``%g``) where that is the number, else its
    shortest exact form (bounds 1 and 1 + 1e-7 must not both read "1")."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))
