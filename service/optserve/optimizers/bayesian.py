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
its history. Up to ``EXACT_MAX_POINTS`` observations the GP is exact and
refitted at every suggestion. Beyond, it is an exact GP on a training subset
of ``SUBSET_SIZE`` observations (``gp/subset.py``: the incumbents'
neighbourhoods and a space-filling cover), its hyperparameters refitted at
each checkpoint (every 10 % of growth), and the points of a batch share one
candidate pool, rescored exactly as each chosen point is believed.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import solve_triangular
from scipy.optimize import minimize
from scipy.special import log_ndtr

from ..domain.best import best_observations, successful
from ..domain.encoding import Encoder
from ..domain.model import Assignments, Experiment, Observation, ParameterType
from . import hyperfit, initial_design, training
from .base import SuggestRequest
from .feasible import FeasibleSpace, feasible_space, space_key
from .gp import GaussianProcess, Hyperparameters, subset
from .gp.acquisition import log_expected_improvement
from .gp.gradient import log_ei_and_grad
from .gp.model import matern52
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
# Pending points handled at once by the pending penalty (bounds its memory).
PENDING_BLOCK = 256
# the last fraction of a budget exploits: mean + kappa * std
EXPLOIT_FRACTION = 0.1
EXPLOIT_KAPPA = 0.5
# in conditional experiments, every BRANCH_EVERY-th suggestion focuses on one branch
BRANCH_EVERY = 3
# ... once this many times the initial design has been observed
BRANCH_AFTER = 3
# margin on constraint metrics, as a fraction of their observed spread
CONSTRAINT_MARGIN = 0.01
# Above this many modelled observations (successful and failed) the GP is fitted
# and conditioned on a training subset of SUBSET_SIZE of them.
EXACT_MAX_POINTS = 500
SUBSET_SIZE = 500
# above EXACT_MAX_POINTS: points of the subset the hyperparameters are fitted on
SUBSET_FIT_POINTS = 300
# above EXACT_MAX_POINTS: local searches of the second and later points of a batch
BATCH_REFINE_STARTS = 1
# above EXACT_MAX_POINTS: points a constraint metric's hyperparameters are fitted on
CONSTRAINT_FIT_POINTS = 200
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
    if int(history.usable.sum() + history.failed.sum()) > EXACT_MAX_POINTS:
        return _suggest_at_scale(request, space, history, chain)
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
        EXACT_MAX_POINTS,
        SUBSET_SIZE,
        SUBSET_FIT_POINTS,
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
    x, y, noise = data.x, data.y, data.noise
    model = GaussianProcess()
    if len(x) > EXACT_MAX_POINTS:
        rows = subset.select(
            x, y, _good(data), SUBSET_SIZE, None if start is None else start.lengthscales
        )
        x, y, noise = x[rows], y[rows], None if noise is None else noise[rows]
        model = GaussianProcess(max_fit_points=SUBSET_FIT_POINTS)
    return model.fit(x, y, noise, warm_start=start, rng=np.random.default_rng([exp.seed, size]))


def _good(data: TrainingData) -> NDArray[np.bool_]:
    """Rows of the training data that are successful and meet every constraint metric."""
    good = np.zeros(len(data.x), dtype=bool)
    good[: data.n_done] = data.feasible
    return good


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


def _suggest_at_scale(
    request: SuggestRequest, space: FeasibleSpace, history: History, chain: hyperfit.Chain
) -> list[Assignments]:
    """Suggestions from the GP on a training subset; the points of a batch share
    one candidate pool, rescored exactly as each chosen point is believed."""
    batch = _ScaledBatch(request, space, history, chain)
    out: list[Assignments] = []
    for offset in range(request.count):
        point = batch.suggest(offset)
        request.chosen.append(point)
        out.append(point)
    return out


class _ScaledBatch:
    """What the points of one batch share above the exact size: the training
    subset, the hyperparameters, the constraint models and the candidate pool."""

    def __init__(
        self,
        request: SuggestRequest,
        space: FeasibleSpace,
        history: History,
        chain: hyperfit.Chain,
    ) -> None:
        self.request = request
        self.space = space
        self.history = history
        self.done = history.done
        # refitted at checkpoints only: every 10 % of growth
        size = max(chain.last_checkpoint(len(history)), chain.first or 0)
        self.hyper = chain.hyperparameters(size) or Hyperparameters.default(space.encoder.dim)
        self.rows: NDArray[np.int64] | None = None
        self.models: dict[bytes, GaussianProcess] = {}
        self.incumbents: dict[tuple[bytes, str], float | None] = {}
        self.pool: _Pool | None = None
        self.constraint_models: list[tuple[GaussianProcess, float]] = []
        encoder = space.encoder
        pending = [s.assignments for s in request.pending]
        self.believed = encoder.encode(pending) if pending else np.empty((0, encoder.dim))
        self.taken = _key_set(
            np.vstack([history.x[history.usable | history.failed], self.believed])
        )

    def _model(
        self, data: TrainingData, rng: np.random.Generator
    ) -> tuple[bytes, GaussianProcess, NDArray[np.int64]]:
        exp = self.request.experiment
        hyper = self.hyper
        if self.rows is None:
            # The batch shares the subset (chosen on its first scalarization).
            self.rows = subset.select(data.x, data.y, _good(data), SUBSET_SIZE, hyper.lengthscales)
            done_rows = self.rows[self.rows < data.n_done]
            self.constraint_models = _constraint_models(
                exp,
                [self.done[i] for i in done_rows],
                self.space.encoder,
                rng,
                fit_points=CONSTRAINT_FIT_POINTS,
            )
        rows = self.rows
        key = data.y[rows].tobytes()
        if key not in self.models:
            self.models[key] = GaussianProcess().condition(
                data.x[rows],
                data.y[rows],
                hyper,
                None if data.noise is None else data.noise[rows],
            )
        return key, self.models[key], rows

    def suggest(self, offset: int) -> Assignments:
        request = self.request
        exp = request.experiment
        space = self.space
        encoder = space.encoder
        rng = request.rng(offset)
        data = self.history.training(rng)
        key, gp, rows = self._model(data, rng)
        x_done, y_done = data.x_done, data.y_done
        sequence = request.sequence + offset
        branch = None
        if data.n_done >= BRANCH_AFTER * initial_design_size(exp):
            branch = _branch_turn(encoder, sequence)
        # The incumbent: the best posterior mean among the subset's successful rows
        # meeting every constraint metric (the best observations are in the subset).
        turn = (key, repr(branch))
        if turn not in self.incumbents:
            done_rows = rows[rows < data.n_done]
            feasible = data.feasible[done_rows]
            in_branch = feasible & _in_branch(encoder, x_done[done_rows], branch)
            if branch is not None and in_branch.any():
                feasible = in_branch
            self.incumbents[turn] = (
                float(np.max(gp.mean(x_done[done_rows][feasible]))) if feasible.any() else None
            )
        incumbent = self.incumbents[turn]
        believed = self.believed
        model = gp.believe(believed)
        acquisition = _Acquisition(
            encoder,
            _solution_penalty(exp, self.done, x_done, sequence, gp),
            _pending_penalty(believed, gp),
            self.constraint_models,
            self.taken,
            branch,
        )
        scorer = None if incumbent is None else AcquisitionScorer(model, incumbent)
        exploit = incumbent is not None and _final_stretch(request, offset)

        def value_of(mean: NDArray[np.float64], var: NDArray[np.float64]) -> NDArray[np.float64]:
            if incumbent is None:
                return np.zeros(len(mean))
            if exploit:
                return mean + EXPLOIT_KAPPA * np.sqrt(var)
            return log_expected_improvement(mean, np.sqrt(var), incumbent)

        def score(candidates: NDArray[np.float64]) -> NDArray[np.float64]:
            if scorer is None:
                value = np.zeros(len(candidates))
            elif exploit:
                mean, var = scorer.predict(candidates)
                value = mean + EXPLOIT_KAPPA * np.sqrt(var)
            else:
                value = scorer.log_ei(candidates)
            return acquisition.finish(candidates, value)

        if self.pool is None:
            # Global draws and neighbourhoods of the best observations, scored once.
            worse = np.where(data.feasible, 0.0, np.ptp(y_done) + 1.0)
            best_rows = x_done[np.argsort(-(y_done - worse))[:INCUMBENTS]]
            candidates = np.vstack(
                [
                    space.draw_rows(GLOBAL_CANDIDATES, rng),
                    _neighbours(space, best_rows, LOCAL_CANDIDATES, 0.1, rng)[0],
                ]
            )
            capacity = len(candidates) + REFINE_STARTS * request.count
            self.pool = _Pool(gp, candidates, acquisition.constraint_terms(candidates), capacity)
        pool = self.pool
        mean, var = pool.posterior(gp, model)
        scores = acquisition.finish(pool.rows, value_of(mean, var), pool.constraint_terms)
        top = np.argsort(-scores)[: REFINE_STARTS if offset == 0 else BATCH_REFINE_STARTS]
        starts, values = _refine(space, pool.rows[top], scores[top], score, rng)
        if incumbent is not None and acquisition.plain:
            _polish_best(space, model, incumbent, starts, values, score)
        point = _pick(space, encoder, starts, values, rng)
        # The refined points join the pool: good starts for the next point of the batch.
        refined = starts[np.isfinite(values)]
        pool.add(gp, refined, acquisition.constraint_terms(refined))
        row = encoder.encode([point])
        self.believed = np.vstack([believed, row])
        self.taken |= _key_set(row)
        return point


class _Pool:
    """Candidates scored once under the subset GP, and rescored exactly when
    believed points are added: the mean does not change, and the variance
    loses the Schur complement's share ``|L_S^-1 (k_P(c) - B v_c)|^2``, where
    ``[B L_S]`` are the believed rows of the extended Cholesky factor."""

    def __init__(
        self,
        gp: GaussianProcess,
        rows: NDArray[np.float64],
        constraint_terms: NDArray[np.float64],
        capacity: int,
    ) -> None:
        n, dim = gp.x_train.shape
        capacity = max(capacity, len(rows))
        self.size = 0
        self._rows = np.empty((capacity, dim))
        self._kx = np.empty((capacity, n))  # k(candidate, training row)
        self._v = np.empty((capacity, n))  # rows of (L^-1 K(X, candidates))^T
        self._var = np.empty(capacity)
        self._constraint_terms = np.empty(capacity)
        self.add(gp, rows, constraint_terms)

    @property
    def rows(self) -> NDArray[np.float64]:
        return self._rows[: self.size]

    @property
    def constraint_terms(self) -> NDArray[np.float64]:
        return self._constraint_terms[: self.size]

    def add(
        self, gp: GaussianProcess, rows: NDArray[np.float64], constraint_terms: NDArray[np.float64]
    ) -> None:
        """Scores ``rows`` under ``gp`` and keeps them (up to the capacity)."""
        rows = rows[: len(self._rows) - self.size]
        if len(rows) == 0:
            return
        kx = matern52(gp.x_train, rows, gp.lengthscales, gp.outputscale)
        v = solve_triangular(gp.chol, kx, lower=True, check_finite=False)
        part = slice(self.size, self.size + len(rows))
        self._rows[part] = rows
        self._kx[part] = kx.T
        self._v[part] = v.T
        self._var[part] = gp.outputscale - np.einsum("ij,ij->j", v, v)
        self._constraint_terms[part] = constraint_terms[: len(rows)]
        self.size += len(rows)

    def posterior(
        self, gp: GaussianProcess, believing: GaussianProcess
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Mean and variance under ``believing`` (``gp`` with believed points appended)."""
        n = len(gp.x_train)
        mean = gp.y_mean + gp.y_std * (self._kx[: self.size] @ gp.alpha)
        var = self._var[: self.size].copy()
        if len(believing.x_train) > n:
            hyper = believing.hyperparameters
            assert hyper is not None
            cross = matern52(
                believing.x_train[n:], self.rows, hyper.lengthscales, hyper.outputscale
            )
            w = solve_triangular(
                believing.chol[n:, n:],
                cross - believing.chol[n:, :n] @ self._v[: self.size].T,
                lower=True,
                check_finite=False,
            )
            var -= np.einsum("ij,ij->j", w, w)
        return mean, gp.y_std**2 * np.maximum(var, 1e-12)


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
    exp: Experiment,
    done: list[Observation],
    encoder: Encoder,
    rng: np.random.Generator,
    *,
    fit_points: int | None = None,
) -> list[tuple[GaussianProcess, float]]:
    """A GP per constraint metric, with its threshold, both signed so that larger is better.

    With ``fit_points``, hyperparameters are fitted on at most that many points
    from the priors' medians and the noisy start only (no random starts).
    """
    models = []
    for metric in exp.constraint_metrics:
        rows = [o for o in done if o.value_of(metric.name) is not None]
        if len(rows) < 2 or metric.threshold is None:
            continue
        signed = sign(metric)
        y = np.array([signed * float(o.value_of(metric.name) or 0.0) for o in rows])
        model = (
            GaussianProcess(n_random_starts=1)
            if fit_points is None
            else GaussianProcess(max_fit_points=fit_points, n_random_starts=0)
        )
        gp = model.fit(
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
