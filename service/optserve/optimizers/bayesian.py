"""Bayesian optimization for OFFLINE experiments.

A Gaussian process on the unit-cube encoding of the space, log expected
improvement maximized over feasible candidates only: uniform draws of the
feasible set (Rust hit-and-run), perturbations of the best points, then a
local search that keeps only feasible points. Open suggestions are pending
points, filled in with the posterior mean (kriging believer) so that
concurrent suggestions spread out. Failed observations take the worst observed
value, which makes their region unattractive. Constraint metrics get a GP each
and weight the acquisition by the probability that all hold; two optimized
metrics are scalarized per suggestion by a random augmented Chebyshev weight
(ParEGO), so that successive suggestions cover the Pareto front.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from scipy.optimize import minimize
from scipy.special import log_ndtr

from ..domain.best import best_observations, satisfies_constraints, successful
from ..domain.encoding import Encoder
from ..domain.model import (
    Assignments,
    Experiment,
    Metric,
    Objective,
    Observation,
    ParameterType,
)
from . import initial_design
from .base import SuggestRequest
from .feasible import FeasibleSpace, feasible_space, space_key
from .gp import GaussianProcess, Hyperparameters
from .gp.gradient import log_ei_and_grad
from .gp.scoring import AcquisitionScorer

INITIAL_MIN, INITIAL_EXTRA, INITIAL_MAX = 4, 2, 10
GLOBAL_CANDIDATES = 768
LOCAL_CANDIDATES = 96  # per incumbent
INCUMBENTS = 4
REFINE_STEPS = (0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
REFINE_CANDIDATES = 48
REFINE_STARTS = 5
POLISH_STARTS = 2
POLISH_ITERATIONS = 40
# local penalty radius around pending points, in length scales
PENDING_RADIUS = 0.5
# Pending points handled at once by the pending penalty (bounds its memory).
PENDING_BLOCK = 256
WARP_OUTPUTS = True
# the last fraction of a budget exploits: mean + kappa * std
EXPLOIT_FRACTION = 0.1
EXPLOIT_KAPPA = 0.5
# warp only when the bad tail is long (skewness below this)
WARP_SKEW = -1.0
CHEBYSHEV_RHO = 0.05
# in conditional experiments, every BRANCH_EVERY-th suggestion focuses on one branch
BRANCH_EVERY = 3
# ... once this many times the initial design has been observed
BRANCH_AFTER = 3
# margin on constraint metrics, as a fraction of their observed spread
CONSTRAINT_MARGIN = 0.01


def initial_design_size(exp: Experiment) -> int:
    """Points of the space-filling design before the model takes over; grows with dimension."""
    size = min(INITIAL_MAX, len(exp.parameters) + INITIAL_EXTRA)
    return max(INITIAL_MIN, size) + exp.parallel_bandwidth - 1


def _sign(metric: Metric) -> float:
    return 1.0 if metric.objective is Objective.MAXIMIZE else -1.0


def suggest(request: SuggestRequest) -> list[Assignments]:
    exp = request.experiment
    done = successful(exp, request.observations)
    if len(done) < initial_design_size(exp):
        return initial_design.suggest(request)
    space = feasible_space(exp)
    fits: dict[bytes, GaussianProcess] = {}  # points of one batch share a fit of the same data
    out: list[Assignments] = []
    for k in range(request.count):
        point = _suggest_one(request, space.encoder, space, k, request.rng(k), fits)
        request.chosen.append(point)
        out.append(point)
    return out


def _objective(
    exp: Experiment, observations: list[Observation], rng: np.random.Generator
) -> NDArray[np.float64]:
    """The scalar to maximize for each successful observation."""
    metrics = exp.optimized_metrics
    values = np.array(
        [[_sign(m) * float(o.value_of(m.name) or 0.0) for m in metrics] for o in observations]
    )
    if len(metrics) == 1:
        return values[:, 0]
    lo, hi = values.min(axis=0), values.max(axis=0)
    # A threshold bounds the region of interest: values short of it score below zero.
    for j, m in enumerate(metrics):
        if m.threshold is not None and _sign(m) * m.threshold < hi[j]:
            lo[j] = max(lo[j], _sign(m) * m.threshold)
    scaled = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
    weights = rng.dirichlet(np.ones(len(metrics)))
    weighted = scaled * weights
    return weighted.min(axis=1) + CHEBYSHEV_RHO * weighted.sum(axis=1)


def _suggest_one(
    request: SuggestRequest,
    encoder: Encoder,
    space: FeasibleSpace,
    offset: int,
    rng: np.random.Generator,
    fits: dict[bytes, GaussianProcess],
) -> Assignments:
    exp = request.experiment
    observations = request.observations
    done = successful(exp, request.observations)
    failed = [o for o in observations if o.failed]
    x_done = encoder.encode([o.assignments for o in done])
    y_done = _objective(exp, done, rng)
    noise = _known_noise(exp, done, len(failed))
    if WARP_OUTPUTS and noise is None:
        y_done = _warp(y_done)
    # Failures take the worst value seen: the model learns to avoid their region.
    x_failed = encoder.encode([o.assignments for o in failed])
    x = np.vstack([x_done, x_failed])
    y = np.concatenate([y_done, np.full(len(failed), y_done.min())])
    fit_rng = np.random.default_rng(rng.integers(2**63))
    data_key = x.tobytes() + y.tobytes()
    if data_key not in fits:
        fits[data_key] = GaussianProcess().fit(
            x, y, noise, warm_start=_WARM.get(space_key(exp)), rng=fit_rng
        )
    gp = fits[data_key]
    if len(_WARM) > _WARM_SIZE:
        _WARM.clear()
    _WARM[space_key(exp)] = gp.hyperparameters
    # The incumbent is the best predicted value among observations meeting every
    # constraint metric; while there is none, the search is for feasibility alone.
    feasible = np.array([satisfies_constraints(exp, o) for o in done])
    # Conditional experiments: some suggestions focus on one branch (a combination
    # of conditional values) with that branch's own incumbent, so that a branch
    # with more parameters to tune is not starved by an early leader elsewhere.
    branch = None
    if len(done) >= BRANCH_AFTER * initial_design_size(exp):
        branch = _branch_turn(encoder, request.sequence + offset)
    in_branch = feasible & _in_branch(encoder, x_done, branch)
    if branch is not None and in_branch.any():
        feasible = in_branch
    incumbent = float(np.max(gp.predict(x_done[feasible])[0])) if feasible.any() else None
    penalty = _solution_penalty(exp, done, x_done, request.sequence + offset, gp)

    # Pending points (open suggestions, and earlier points of this batch): kriging believer.
    pending = [s.assignments for s in request.pending] + request.chosen
    taken = x
    if pending:
        x_pending = encoder.encode(pending)
        believed = gp.predict(x_pending)[0]
        gp = GaussianProcess().condition(
            np.vstack([x, x_pending]),
            np.concatenate([y, believed]),
            gp.hyperparameters,  # type: ignore[arg-type]
            None if noise is None else np.concatenate([noise, np.zeros(len(pending))]),
        )
        taken = np.vstack([x, x_pending])
    constraint_models = _constraint_models(exp, done, encoder, rng)

    scorer = None if incumbent is None else AcquisitionScorer(gp, incumbent)
    exploit = incumbent is not None and _final_stretch(request, offset)
    taken_keys = _row_keys(taken)
    pending_penalty = _pending_penalty(taken[len(x) :], gp)

    def score(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        if scorer is None:
            value = np.zeros(len(rows))
        elif exploit:
            # the last suggestions of a budget refine the best region (upper confidence bound)
            mean, var = scorer.predict(rows)
            value = mean + EXPLOIT_KAPPA * np.sqrt(var)
        else:
            value = scorer.log_ei(rows)
        if penalty is not None:
            value = value + penalty(rows)
        if pending_penalty is not None:
            value = value + pending_penalty(rows)
        for model, threshold in constraint_models:
            c_mean, c_var = model.predict(rows)
            value = value + log_ndtr((c_mean - threshold) / np.sqrt(c_var))
        value[np.isin(_row_keys(rows), taken_keys)] = -np.inf
        if branch is not None:
            value[~_in_branch(encoder, rows, branch)] = -np.inf
        return value

    ranked = np.argsort(-(y_done - np.where(feasible, 0.0, np.ptp(y_done) + 1.0)))
    best_rows = x_done[ranked[:INCUMBENTS]]
    rows = np.vstack(
        [
            space.draw_rows(GLOBAL_CANDIDATES, rng),
            _neighbours(space, best_rows, LOCAL_CANDIDATES, 0.1, rng)[0],
        ]
    )
    scores = score(rows)
    # Feasible local search from the best few candidates, with shrinking steps.
    top = np.argsort(-scores)[:REFINE_STARTS]
    starts, values = rows[top], scores[top]
    for step in REFINE_STEPS:
        near, origin = _neighbours(space, starts, REFINE_CANDIDATES, step, rng)
        if len(near) == 0:
            continue
        near_scores = score(near)
        for i in range(len(starts)):
            mine = np.flatnonzero(origin == i)
            if len(mine) and near_scores[mine].max() > values[i]:
                k = mine[np.argmax(near_scores[mine])]
                starts[i], values[i] = near[k], near_scores[k]
    if (
        incumbent is not None
        and penalty is None
        and pending_penalty is None
        and not constraint_models
    ):
        for i in np.argsort(-values)[:POLISH_STARTS]:
            polished = _polish(space, gp, incumbent, starts[i])
            if polished is not None:
                polished_score = score(polished[None, :])[0]
                if polished_score > values[i]:
                    starts[i], values[i] = polished, polished_score
    order = np.argsort(-values)
    for i in order:
        if not np.isfinite(values[i]):
            break
        (point,) = encoder.decode(starts[i : i + 1])
        if space.is_feasible(point):
            return point
    # every scored point is taken (or numerically off): a fresh uniform draw
    return space.draw(1, rng)[0]


# Last fitted hyperparameters per search space, to warm-start the next fit.
_WARM: dict[tuple[str, int, str], Hyperparameters | None] = {}
_WARM_SIZE = 1024


def _polish(
    space: FeasibleSpace, gp: GaussianProcess, incumbent: float, row: NDArray[np.float64]
) -> NDArray[np.float64] | None:
    """Gradient ascent of log EI over the active continuous coordinates of ``row``,
    the others held fixed; linear constraints on doubles are kept (SLSQP).

    Returns:
        The polished canonical row when it is feasible, else None.
    """
    encoder = space.encoder
    exp = encoder.experiment
    (point,) = encoder.decode(row[None, :])
    free = [
        p
        for p in exp.parameters
        if p.type is ParameterType.DOUBLE and not p.grid and p.name in point
    ]
    if not free:
        return None
    cols = np.array([encoder.slices[p.name].start for p in free])
    base = row.copy()

    def objective(u: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        base[cols] = u
        value, grad = log_ei_and_grad(gp, base, incumbent)
        return -value, -grad[cols]

    bounds = [(0.0, 1.0)] * len(cols)
    a, b = space.encoded_double_constraints(cols)
    try:
        if len(a):
            result = minimize(
                objective,
                row[cols],
                jac=True,
                method="SLSQP",
                bounds=bounds,
                constraints=[{"type": "ineq", "fun": lambda u: b - a @ u, "jac": lambda u: -a}],
                options={"maxiter": POLISH_ITERATIONS},
            )
        else:
            result = minimize(
                objective,
                row[cols],
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": POLISH_ITERATIONS},
            )
    except (ValueError, np.linalg.LinAlgError):
        return None
    if not np.all(np.isfinite(result.x)):
        return None
    candidate = row.copy()
    candidate[cols] = np.clip(result.x, 0.0, 1.0)
    candidate = space.vectors.canonical(candidate[None, :])
    return candidate[0] if space.feasible_mask(candidate)[0] else None


def _solution_penalty(
    exp: Experiment,
    done: list[Observation],
    x_done: NDArray[np.float64],
    sequence: int,
    gp: GaussianProcess,
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]] | None:
    """For num_solutions > 1: a log-penalty near every current solution but one.

    Suggestions take turns refining one solution while being pushed away from
    the others, so the search keeps several separated good regions alive.
    """
    if exp.num_solutions <= 1:
        return None
    solutions, _ = best_observations(exp, done)
    if len(solutions) < 2:
        return None
    keep = sequence % exp.num_solutions
    index = {o.id: i for i, o in enumerate(done)}
    others = np.array([x_done[index[o.id]] for k, o in enumerate(solutions) if k != keep])
    if len(others) == 0:
        return None
    radius = np.maximum(gp.lengthscales, 0.05)

    def penalty(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        d2 = (((rows[:, None, :] - others[None, :, :]) / radius) ** 2).sum(axis=2)
        return np.log1p(-np.exp(-0.5 * d2) + 1e-12).sum(axis=1)

    return penalty


def _branch_turn(encoder: Encoder, sequence: int) -> dict[str, int] | None:
    """The branch this suggestion focuses on (conditional name -> value index), if any."""
    exp = encoder.experiment
    if not exp.conditionals or sequence % BRANCH_EVERY:
        return None
    sizes = [len(k.values) for k in exp.conditionals]
    index = (sequence // BRANCH_EVERY) % int(np.prod(sizes))
    turn = {}
    for k, size in zip(exp.conditionals, sizes, strict=True):
        turn[k.name], index = index % size, index // size
    return turn


def _in_branch(
    encoder: Encoder, rows: NDArray[np.float64], branch: dict[str, int] | None
) -> NDArray[np.bool_]:
    """Rows whose conditionals take the branch's values (all rows without a branch)."""
    mask = np.ones(len(rows), dtype=bool)
    for name, index in (branch or {}).items():
        mask &= rows[:, encoder.slices[name].start + index] == 1.0
    return mask


def _final_stretch(request: SuggestRequest, offset: int) -> bool:
    """Whether this suggestion falls in the last part of the observation budget."""
    budget = request.experiment.observation_budget
    if not budget or EXPLOIT_FRACTION <= 0:
        return False
    used = len(request.observations) + len(request.pending) + offset
    return budget - used <= max(1, round(EXPLOIT_FRACTION * budget))


def _warp(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """A Yeo-Johnson power transform (MLE) when the bad values have a long tail.

    Outcomes like Rosenbrock's span orders of magnitude; a GP on them is ruled
    by the worst points and goes flat where the optimum is. Skewed the other
    way (a few good values above a plateau, like Ackley's) they are left alone:
    compressing the good tail would hide the signal.
    """
    if len(y) < 4 or np.ptp(y) <= 0 or stats.skew(y) > WARP_SKEW:
        return y
    scaled = (y - np.median(y)) / np.std(y)
    try:
        warped = stats.yeojohnson(scaled)[0]
    except (ValueError, FloatingPointError):
        return y
    return warped if np.all(np.isfinite(warped)) else y


def _known_noise(
    exp: Experiment, done: list[Observation], n_failed: int
) -> NDArray[np.float64] | None:
    if len(exp.optimized_metrics) != 1:
        return None
    name = exp.optimized_metrics[0].name
    stddevs = [next((v.stddev for v in o.values if v.name == name), None) for o in done]
    if all(s is None for s in stddevs):
        return None
    noise = np.array([0.0 if s is None else s * s for s in stddevs])
    return np.concatenate([noise, np.zeros(n_failed)])


def _constraint_models(
    exp: Experiment, done: list[Observation], encoder: Encoder, rng: np.random.Generator
) -> list[tuple[GaussianProcess, float]]:
    """A GP per constraint metric, with its threshold, both signed so that larger is better."""
    models = []
    for metric in exp.constraint_metrics:
        rows = [o for o in done if o.value_of(metric.name) is not None]
        if len(rows) < 2 or metric.threshold is None:
            continue
        sign = _sign(metric)
        y = np.array([sign * float(o.value_of(metric.name) or 0.0) for o in rows])
        gp = GaussianProcess(n_random_starts=1).fit(
            encoder.encode([o.assignments for o in rows]),
            y,
            rng=np.random.default_rng(rng.integers(2**63)),
        )
        # A small safety margin: the constrained optimum usually lies on the
        # boundary, and suggestions should land on its feasible side.
        margin = CONSTRAINT_MARGIN * float(np.std(y))
        models.append((gp, sign * metric.threshold + margin))
    return models


def _neighbours(
    space: FeasibleSpace,
    rows: NDArray[np.float64],
    per_row: int,
    step: float,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Feasible perturbations of encoded points: a few numeric coordinates moved by
    N(0, step^2), categoricals and conditionals sometimes switched.

    Returns:
        (canonical feasible rows, index in ``rows`` of the point each came from).
    """
    encoder = space.encoder
    base = np.repeat(rows, per_row, axis=0)
    origin = np.repeat(np.arange(len(rows)), per_row)
    cols = encoder.numeric_columns
    if len(cols) and len(base):
        # move each coordinate with probability ~ 2 / d, at least one
        move = rng.random((len(base), len(cols))) < min(1.0, 2.0 / len(cols))
        move[np.arange(len(base)), rng.integers(len(cols), size=len(base))] = True
        base[:, cols] += move * rng.normal(0.0, step, size=(len(base), len(cols)))
    exp = encoder.experiment
    one_hot = [encoder.slices[p.name] for p in exp.parameters if not p.is_numeric]
    one_hot += [encoder.slices[k.name] for k in exp.conditionals]
    for s in one_hot:
        flip = np.flatnonzero(rng.random(len(base)) < 0.15)
        base[np.ix_(flip, np.arange(s.start, s.stop))] = 0.0
        base[flip, s.start + rng.integers(s.stop - s.start, size=len(flip))] = 1.0
    base = space.vectors.canonical(base)
    kept = space.feasible_mask(base)
    return base[kept], origin[kept]


def _row_keys(rows: NDArray[np.float64]) -> NDArray[np.void]:
    """Hashable keys of canonical rows (rounded, so re-encoded points match)."""
    rounded = np.ascontiguousarray(np.round(rows, 9) + 0.0)  # + 0.0 folds -0.0 into 0.0
    return rounded.view(np.dtype((np.void, rounded.dtype.itemsize * rounded.shape[1]))).ravel()


def _pending_penalty(
    pending: NDArray[np.float64], gp: GaussianProcess
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]] | None:
    """A log-penalty within about a length scale of each pending point (local
    penalization), on top of the kriging believer, so that concurrent
    suggestions spread out even where the believer alone leaves EI high."""
    if len(pending) == 0:
        return None
    radius = PENDING_RADIUS * gp.lengthscales
    scaled_pending = pending / radius
    pending_norms = (scaled_pending**2).sum(axis=1)

    def penalty(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        # squared distances as |r|^2 + |p|^2 - 2 r.p, in blocks of pending points:
        # memory rows x PENDING_BLOCK, not rows x pending x dimensions
        scaled = rows / radius
        norms = (scaled**2).sum(axis=1)
        total = np.zeros(len(rows))
        for start in range(0, len(pending), PENDING_BLOCK):
            block = scaled_pending[start : start + PENDING_BLOCK]
            d2 = norms[:, None] + pending_norms[None, start : start + PENDING_BLOCK]
            d2 -= 2.0 * (scaled @ block.T)
            # rounding leaves ~1e-15 where a row is a pending point: make it exactly 0
            d2[d2 < 1e-9] = 0.0
            total += np.log1p(-np.exp(-0.5 * d2) + 1e-12).sum(axis=1)
        return total

    return penalty
