"""Bayesian optimization for OFFLINE experiments: the pipeline of one suggestion.

After a space-filling design (``initial_design``), each suggestion runs on
the encoding the data prefer (``log_scale``: positive numeric parameters
log-encoded where the model's posterior density says so) and goes through
four stages, each in its own module:

1. training data (``training``): the history as arrays, encoded once per
   call; failed observations take the worst value seen, long bad tails are
   warped; two optimized metrics go to ``multiobjective`` (expected
   hypervolume improvement, one GP per metric), or above its size limit are
   scalarized per suggestion by a random augmented Chebyshev weight (ParEGO);
2. models (``models``): a Gaussian process on the unit-cube encoding, its
   constant mean the worst value seen (on a
   conditional space, a mixture of product and additive kernels,
   ``gp.inputs``), exact up to 500 observations and on a training subset of
   500 of them beyond, its hyperparameters from a chain of fits that depends
   on the history alone;
   one GP per constraint metric;
3. acquisition (``acquisition``): log expected improvement, weighted by the
   probability that every constraint metric holds and by the parameters'
   priors (decaying, piBO), with a local penalty near other solutions. Where
   the fitted noise is material (up to the exact size) it is noisy EI
   (Letham et al. 2019): with nothing in flight, EI averaged over 16 joint
   draws of the latent values at the observations that may be the best, each
   draw its own incumbent.
   Pending points (open suggestions, earlier points of the batch) enter as
   16 joint draws of their outcomes, EI averaged over the GP conditioned on
   each (Snoek et al. 2012; above the exact size, and for the final stretch's
   bound, believed at the posterior mean: kriging believer), and are
   locally penalized with a Lipschitz estimate (Gonzalez et al. 2016), so
   that concurrent suggestions spread where the model is unsure and refine
   next to each other where it is sure; every suggestion maximizes this
   acquisition (asynchronous Thompson draws in turn with it measured worse
   with 8 open, as Alvi et al. 2019 found against local penalization);
4. maximizer (``maximizer``): feasible candidates, a local search, a
   gradient polish, the best feasible point.

Above the exact size the points of a batch share the training subset, the
model and one candidate pool, rescored exactly as each chosen point is believed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..domain.best import successful
from ..domain.encoding import Encoder
from ..domain.model import Assignments, ExperimentType
from . import acquisition as acq
from . import initial_design, log_scale, maximizer, models, multiobjective
from .base import Optimizer, SuggestRequest, register
from .feasible import FeasibleSpace, feasible_space
from .gp import GaussianProcess
from .initial_design import initial_design_size
from .priors import UnitPrior, unit_priors
from .training import History


def suggest(request: SuggestRequest) -> list[Assignments]:
    exp = request.experiment
    done = successful(exp, request.observations)
    if len(done) < initial_design_size(exp):
        return initial_design.suggest(request)
    space = feasible_space(exp)
    history = History(exp, request.observations, space.encoder)
    if multiobjective.applies(history):
        return multiobjective.suggest(request, space, history)
    call_models = models.Models(history)
    chosen = log_scale.preferred(request, call_models)
    if chosen is not request:  # the log encoding: its own space and models
        request, exp = chosen, chosen.experiment
        space = feasible_space(exp)
        call_models = models.Models(History(exp, request.observations, space.encoder))
    if call_models.at_scale:
        return _suggest_at_scale(request, space, call_models)
    fits: dict[bytes, GaussianProcess] = {}  # points of one batch share a fit of the same data
    out: list[Assignments] = []
    for k in range(request.count):
        point = _suggest_one(request, space.encoder, space, k, request.rng(k), fits, call_models)
        request.chosen.append(point)
        out.append(point)
    return out


def _suggest_one(
    request: SuggestRequest,
    encoder: Encoder,
    space: FeasibleSpace,
    offset: int,
    rng: np.random.Generator,
    fits: dict[bytes, GaussianProcess],
    call_models: models.Models,
) -> Assignments:
    """One point from the exact GP."""
    exp = request.experiment
    history = call_models.history
    done = history.done
    # 1. training data
    data = history.training(rng)
    x, x_done, y_done = data.x, data.x_done, data.y_done
    # 2. models
    fit_rng = np.random.default_rng(rng.integers(2**63))
    data_key = data.key()
    if data_key not in fits:
        fits[data_key] = call_models.exact(data, fit_rng)
    gp = fits[data_key]
    # The incumbent is the best predicted value among observations meeting every
    # constraint metric; while there is none, the search is for feasibility alone.
    feasible = data.feasible
    # Conditional experiments: some suggestions focus on one branch (a combination
    # of conditional values) with that branch's own incumbent, so that a branch
    # with more parameters to tune is not starved by an early leader elsewhere.
    branch = None
    if len(done) >= acq.BRANCH_AFTER * initial_design_size(exp):
        branch = acq.branch_turn(encoder, request.sequence + offset)
    in_branch = feasible & acq.in_branch(encoder, x_done, branch)
    if branch is not None and in_branch.any():
        feasible = in_branch
    incumbent = float(np.max(gp.predict(x_done[feasible])[0])) if feasible.any() else None
    penalty = acq.solution_penalty(exp, done, x_done, request.sequence + offset, gp)
    constraint_models = models.constraint_models(exp, done, encoder, rng)
    # Pending points: open suggestions, and the earlier points of this batch.
    pending = [s.assignments for s in request.pending] + request.chosen
    x_pending = encoder.encode(pending) if pending else np.empty((0, encoder.dim))
    domain = _lipschitz_domain(space, x_pending, incumbent, rng)
    gp_pending, believed, pending_penalty = acq.with_pending(
        gp, incumbent, x_pending, encoder, branch, constraint_models, domain
    )
    # Noisy outcomes and nothing in flight: EI over draws of the best observations'
    # latent values; else EI over the best mean, over draws of the pending outcomes.
    # (With points in flight their fantasies already keep the incumbent uncertain;
    # drawing the baseline too measured worse with 8 open: hartmann6 5 better of 20.)
    fantasies = None
    if incumbent is not None and len(x_pending) == 0:
        fantasies = acq.noisy_fantasies(gp, x_done[feasible], rng)
    if fantasies is None:
        fantasies = acq.pending_fantasies(
            gp, gp_pending, incumbent, x_pending, encoder, branch, constraint_models, rng
        )
    incumbent = believed
    # 3. acquisition
    acquisition = acq.Acquisition(
        gp_pending,
        incumbent,
        incumbent is not None and acq.final_stretch(request, offset),
        encoder,
        penalty,
        pending_penalty,
        constraint_models,
        acq.key_set(np.vstack([x, x_pending])),
        branch,
        _priors(encoder, len(done)),
        fantasies,
    )
    # 4. maximizer: the compiled one where the acquisition is log EI alone
    best = maximizer.best_rows(x_done, y_done, feasible)
    point = maximizer.maximize_log_ei(space, acquisition, best, rng)
    if point is not None:
        return point
    rows = maximizer.candidates(space, best, rng)
    polish = (
        (fantasies or gp_pending, incumbent)
        if incumbent is not None and acquisition.polishable
        else None
    )
    point, _, _ = maximizer.maximize(
        space, acquisition, rows, acquisition(rows), maximizer.REFINE_STARTS, rng, polish
    )
    return point


def _suggest_at_scale(
    request: SuggestRequest, space: FeasibleSpace, call_models: models.Models
) -> list[Assignments]:
    """Suggestions from the GP on a training subset; the points of a batch share one
    candidate pool, rescored exactly as each chosen point is believed."""
    batch = _ScaledBatch(request, space, call_models)
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
        self, request: SuggestRequest, space: FeasibleSpace, call_models: models.Models
    ) -> None:
        self.request = request
        self.space = space
        self.history = call_models.history
        self.done = self.history.done
        self.hyper = call_models.subset_hyperparameters()
        self.input_map = call_models.input_map
        self.model: models.SubsetModel | None = None
        self.incumbents: dict[tuple[bytes, str], float | None] = {}
        self.pool: maximizer.CandidatePool | None = None
        self.constraint_models: list[models.ConstraintModel] = []
        encoder = space.encoder
        pending = [s.assignments for s in request.pending]
        self.believed = encoder.encode(pending) if pending else np.empty((0, encoder.dim))
        history = self.history
        self.taken = acq.key_set(
            np.vstack([history.x[history.usable | history.failed], self.believed])
        )

    def suggest(self, offset: int) -> Assignments:
        request = self.request
        exp = request.experiment
        space = self.space
        encoder = space.encoder
        rng = request.rng(offset)
        # 1. training data
        data = self.history.training(rng)
        # 2. models (the training subset and the constraint models are the batch's)
        if self.model is None:
            self.model = models.SubsetModel(exp, self.hyper, data, self.input_map)
            self.constraint_models = models.constraint_models(
                exp,
                [self.done[i] for i in self.model.done_rows],
                encoder,
                rng,
                fit_points=models.CONSTRAINT_FIT_POINTS,
            )
        key, gp = self.model.gp(data)
        x_done, y_done = data.x_done, data.y_done
        sequence = request.sequence + offset
        branch = None
        if data.n_done >= acq.BRANCH_AFTER * initial_design_size(exp):
            branch = acq.branch_turn(encoder, sequence)
        # The incumbent: the best posterior mean among the subset's successful rows
        # meeting every constraint metric (the best observations are in the subset).
        turn = (key, repr(branch))
        if turn not in self.incumbents:
            done_rows = self.model.done_rows
            feasible = data.feasible[done_rows]
            in_branch = feasible & acq.in_branch(encoder, x_done[done_rows], branch)
            if branch is not None and in_branch.any():
                feasible = in_branch
            self.incumbents[turn] = (
                float(np.max(gp.mean(x_done[done_rows][feasible]))) if feasible.any() else None
            )
        believed = self.believed
        domain = _lipschitz_domain(space, believed, self.incumbents[turn], rng)
        believing, incumbent, pending_penalty = acq.with_pending(
            gp, self.incumbents[turn], believed, encoder, branch, self.constraint_models, domain
        )
        # 3. acquisition
        acquisition = acq.Acquisition(
            believing,
            incumbent,
            incumbent is not None and acq.final_stretch(request, offset),
            encoder,
            acq.solution_penalty(exp, self.done, x_done, sequence, gp),
            pending_penalty,
            self.constraint_models,
            self.taken,
            branch,
            _priors(encoder, len(self.done)),
        )
        # 4. maximizer, from the batch's pool
        if self.pool is None:
            rows = maximizer.candidates(
                space, maximizer.best_rows(x_done, y_done, data.feasible), rng
            )
            capacity = len(rows) + maximizer.REFINE_STARTS * request.count
            self.pool = maximizer.CandidatePool(
                gp, rows, acquisition.constraint_terms(rows), capacity
            )
        pool = self.pool
        mean, var = pool.posterior(gp, believing)
        scores = acquisition.of_posterior(pool.rows, mean, var, pool.constraint_terms)
        starts = maximizer.REFINE_STARTS if offset == 0 else maximizer.BATCH_REFINE_STARTS
        polish = (believing, incumbent) if incumbent is not None and acquisition.plain else None
        point, refined, values = maximizer.maximize(
            space, acquisition, pool.rows, scores, starts, rng, polish
        )
        # The refined points join the pool: good starts for the next point of the batch.
        refined = refined[np.isfinite(values)]
        pool.add(gp, refined, acquisition.constraint_terms(refined))
        row = encoder.encode([point])
        self.believed = np.vstack([believed, row])
        self.taken |= acq.key_set(row)
        return point


def _lipschitz_domain(
    space: FeasibleSpace,
    pending: NDArray[np.float64],
    incumbent: float | None,
    rng: np.random.Generator,
) -> NDArray[np.float64] | None:
    """Draws of the domain for the local penalty's Lipschitz constant, where there
    is a local penalty (points in flight and an incumbent), from a child stream
    of ``rng`` (the suggestion's own draws stay as they are)."""
    if len(pending) == 0 or incumbent is None:
        return None
    return space.draw_rows(acq.LIPSCHITZ_DRAWS, rng.spawn(1)[0])


def _priors(encoder: Encoder, observed: int) -> tuple[list[UnitPrior], float] | None:
    """The parameters' priors and their piBO exponent, or None without priors."""
    unit = unit_priors(encoder.experiment, encoder)
    return (unit, acq.prior_exponent(encoder.experiment, observed)) if unit else None


# A numerical failure of the model falls back to the space-filling design.
register(ExperimentType.OFFLINE, Optimizer(suggest, fallback=initial_design.suggest))
