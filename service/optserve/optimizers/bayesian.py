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

Hyperparameters come from a chain of fits at fixed history sizes
(``hyperfit``), so a suggestion depends only on the experiment, its seed and
its history.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import log_ndtr

from ..domain.best import best_observations, successful
from ..domain.encoding import Encoder
from ..domain.model import Assignments, Experiment, Observation, ParameterType
from . import hyperfit, initial_design, training
from .base import SuggestRequest
from .feasible import FeasibleSpace, feasible_space, space_key
from .gp import GaussianProcess, Hyperparameters
from .gp.gradient import log_ei_and_grad
from .gp.scoring import AcquisitionScorer
from .training import History, TrainingData, sign

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
# the last fraction of a budget exploits: mean + kappa * std
EXPLOIT_FRACTION = 0.1
EXPLOIT_KAPPA = 0.5
# in conditional experiments, every BRANCH_EVERY-th suggestion focuses on one branch
BRANCH_EVERY = 3
# ... once this many times the initial design has been observed
BRANCH_AFTER = 3
# margin on constraint metrics, as a fraction of their observed spread
CONSTRAINT_MARGIN = 0.01
_CHAIN_WEIGHTS = 1  # stream of the chain's scalarization weights (two metrics)


def initial_design_size(exp: Experiment) -> int:
    """Points of the space-filling design before the model takes over; grows with dimension."""
    size = min(INITIAL_MAX, len(exp.parameters) + INITIAL_EXTRA)
    return max(INITIAL_MIN, size) + exp.parallel_bandwidth - 1


def suggest(request: SuggestRequest) -> list[Assignments]:
    exp = request.experiment
    done = successful(exp, request.observations)
    if len(done) < initial_design_size(exp):
        return initial_design.suggest(request)
    space = feasible_space(exp)
    history = History(exp, request.observations, space.encoder)
    chain = hyperfit.Chain(
        _chain_key(exp), history, _first_modelled(history), functools.partial(_chain_fit, history)
    )
    fits: dict[bytes, GaussianProcess] = {}  # points of one batch share a fit of the same data
    out: list[Assignments] = []
    for k in range(request.count):
        point = _suggest_one(request, space.encoder, space, k, request.rng(k), fits, history, chain)
        request.chosen.append(point)
        out.append(point)
    return out


def _chain_key(exp: Experiment) -> bytes:
    """What the chain's fits depend on besides the history."""
    settings = (
        space_key(exp),
        exp.metrics,
        initial_design_size(exp),
        training.WARP_OUTPUTS,
        training.WARP_SKEW,
    )
    return hashlib.blake2b(repr(settings).encode(), digest_size=16).digest()


def _first_modelled(history: History) -> int | None:
    """The shortest prefix of the history with the initial design's worth of
    successful observations (None if the history has not)."""
    reached = np.flatnonzero(np.cumsum(history.usable) >= initial_design_size(history.experiment))
    return int(reached[0]) + 1 if len(reached) else None


def _chain_fit(history: History, size: int, start: Hyperparameters | None) -> GaussianProcess:
    """The chain's fit on the first ``size`` observations, from ``start``."""
    exp = history.experiment
    prefix = history.prefix(size)
    data = prefix.training(np.random.default_rng([exp.seed, size, _CHAIN_WEIGHTS]))
    return GaussianProcess().fit(
        data.x, data.y, data.noise, warm_start=start, rng=np.random.default_rng([exp.seed, size])
    )


def _exact_model(
    exp: Experiment,
    history: History,
    chain: hyperfit.Chain,
    data: TrainingData,
    fit_rng: np.random.Generator,
) -> GaussianProcess:
    """The GP on all the training data."""
    size = len(history)
    if len(exp.optimized_metrics) == 1:
        # The chain's own fit at this size: the same data.
        hyper = chain.hyperparameters(size)
        if size in chain.fitted:
            return chain.fitted[size]
        if hyper is not None:
            return GaussianProcess().condition(data.x, data.y, hyper, data.noise)
        start = None
    else:
        # Scalarized per suggestion: warm-started from the chain's fit (fixed weights).
        parent = chain.parent(size)
        start = None if parent is None else chain.hyperparameters(parent)
    return GaussianProcess().fit(data.x, data.y, data.noise, warm_start=start, rng=fit_rng)


def _suggest_one(
    request: SuggestRequest,
    encoder: Encoder,
    space: FeasibleSpace,
    offset: int,
    rng: np.random.Generator,
    fits: dict[bytes, GaussianProcess],
    history: History,
    chain: hyperfit.Chain,
) -> Assignments:
    exp = request.experiment
    done = history.done
    data = history.training(rng)
    x, y, noise, x_done, y_done = data.x, data.y, data.noise, data.x_done, data.y_done
    fit_rng = np.random.default_rng(rng.integers(2**63))
    data_key = data.key()
    if data_key not in fits:
        fits[data_key] = _exact_model(exp, history, chain, data, fit_rng)
    gp = fits[data_key]
    # The incumbent is the best predicted value among observations meeting every
    # constraint metric; while there is none, the search is for feasibility alone.
    feasible = data.feasible
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
    acquisition = _Acquisition(
        encoder,
        penalty,
        _pending_penalty(taken[len(x) :], gp),
        constraint_models,
        _key_set(taken),
        branch,
    )

    def score(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        if scorer is None:
            value = np.zeros(len(rows))
        elif exploit:
            # the last suggestions of a budget refine the best region (upper confidence bound)
            mean, var = scorer.predict(rows)
            value = mean + EXPLOIT_KAPPA * np.sqrt(var)
        else:
            value = scorer.log_ei(rows)
        return acquisition.finish(rows, value)

    ranked = np.argsort(-(y_done - np.where(feasible, 0.0, np.ptp(y_done) + 1.0)))
    best_rows = x_done[ranked[:INCUMBENTS]]
    rows = np.vstack(
        [
            space.draw_rows(GLOBAL_CANDIDATES, rng),
            _neighbours(space, best_rows, LOCAL_CANDIDATES, 0.1, rng)[0],
        ]
    )
    scores = score(rows)
    top = np.argsort(-scores)[:REFINE_STARTS]
    starts, values = _refine(space, rows[top], scores[top], score, rng)
    if incumbent is not None and acquisition.plain:
        _polish_best(space, gp, incumbent, starts, values, score)
    return _pick(space, encoder, starts, values, rng)


class _Acquisition:
    """The terms added to the model's acquisition value of candidate rows:
    penalties, the probability that constraint metrics hold, and exclusions."""

    def __init__(
        self,
        encoder: Encoder,
        penalty: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None,
        pending_penalty: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None,
        constraint_models: list[tuple[GaussianProcess, float]],
        taken: set[bytes],
        branch: dict[str, int] | None,
    ) -> None:
        self.encoder = encoder
        self.penalty = penalty
        self.pending_penalty = pending_penalty
        self.constraint_models = constraint_models
        self.taken = taken
        self.branch = branch

    @property
    def plain(self) -> bool:
        """Whether the acquisition is log EI alone (what the gradient polish ascends)."""
        return self.penalty is None and self.pending_penalty is None and not self.constraint_models

    def constraint_terms(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """Log probability that every constraint metric holds."""
        value = np.zeros(len(rows))
        for model, threshold in self.constraint_models:
            c_mean, c_var = model.predict(rows)
            value = value + log_ndtr((c_mean - threshold) / np.sqrt(c_var))
        return value

    def finish(
        self,
        rows: NDArray[np.float64],
        value: NDArray[np.float64],
        constraint_terms: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]:
        """``value`` (the model's acquisition at ``rows``) with every other term."""
        if self.penalty is not None:
            value = value + self.penalty(rows)
        if self.pending_penalty is not None:
            value = value + self.pending_penalty(rows)
        if constraint_terms is not None:
            value = value + constraint_terms
        else:
            for model, threshold in self.constraint_models:
                c_mean, c_var = model.predict(rows)
                value = value + log_ndtr((c_mean - threshold) / np.sqrt(c_var))
        keys = _row_keys(rows)
        value[np.fromiter((k.tobytes() in self.taken for k in keys), bool, len(keys))] = -np.inf
        if self.branch is not None:
            value[~_in_branch(self.encoder, rows, self.branch)] = -np.inf
        return value


def _refine(
    space: FeasibleSpace,
    starts: NDArray[np.float64],
    values: NDArray[np.float64],
    score: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Feasible local search from ``starts``, with shrinking steps."""
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
    return starts, values


def _polish_best(
    space: FeasibleSpace,
    gp: GaussianProcess,
    incumbent: float,
    starts: NDArray[np.float64],
    values: NDArray[np.float64],
    score: Callable[[NDArray[np.float64]], NDArray[np.float64]],
) -> None:
    """Gradient polish of the best few ``starts``, in place where it improves them."""
    for i in np.argsort(-values)[:POLISH_STARTS]:
        polished = _polish(space, gp, incumbent, starts[i])
        if polished is not None:
            polished_score = score(polished[None, :])[0]
            if polished_score > values[i]:
                starts[i], values[i] = polished, polished_score


def _pick(
    space: FeasibleSpace,
    encoder: Encoder,
    starts: NDArray[np.float64],
    values: NDArray[np.float64],
    rng: np.random.Generator,
) -> Assignments:
    """The best feasible start, decoded."""
    order = np.argsort(-values)
    for i in order:
        if not np.isfinite(values[i]):
            break
        (point,) = encoder.decode(starts[i : i + 1])
        if space.is_feasible(point):
            return point
    # every scored point is taken (or numerically off): a fresh uniform draw
    return space.draw(1, rng)[0]


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


def _constraint_models(
    exp: Experiment, done: list[Observation], encoder: Encoder, rng: np.random.Generator
) -> list[tuple[GaussianProcess, float]]:
    """A GP per constraint metric, with its threshold, both signed so that larger is better."""
    models = []
    for metric in exp.constraint_metrics:
        rows = [o for o in done if o.value_of(metric.name) is not None]
        if len(rows) < 2 or metric.threshold is None:
            continue
        signed = sign(metric)
        y = np.array([signed * float(o.value_of(metric.name) or 0.0) for o in rows])
        gp = GaussianProcess(n_random_starts=1).fit(
            encoder.encode([o.assignments for o in rows]),
            y,
            rng=np.random.default_rng(rng.integers(2**63)),
        )
        # A small safety margin: the constrained optimum usually lies on the
        # boundary, and suggestions should land on its feasible side.
        margin = CONSTRAINT_MARGIN * float(np.std(y))
        models.append((gp, signed * metric.threshold + margin))
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


def _key_set(rows: NDArray[np.float64]) -> set[bytes]:
    """The keys of ``rows`` as a set, for membership tests."""
    return {k.tobytes() for k in _row_keys(rows)}


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

    def penalty(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        d2 = (((rows[:, None, :] - pending[None, :, :]) / radius) ** 2).sum(axis=2)
        return np.log1p(-np.exp(-0.5 * d2) + 1e-12).sum(axis=1)

    return penalty
