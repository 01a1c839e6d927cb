"""The Bayesian optimizer's acquisition: what a candidate row is worth.

Log expected improvement over the incumbent (an upper confidence bound in the
last tenth of a budget), plus the log probability that every constraint
metric holds, plus local penalties: near pending points (``with_pending``:
kriging believer and local penalization, so that concurrent suggestions
spread out; EI is averaged over draws of the pending outcomes,
``pending_fantasies``) and, with ``num_solutions > 1``, near every current
solution but the one this suggestion refines, plus the parameters' log prior density
times a weight that decays with the observations (piBO). Observed and
pending points are excluded, and a suggestion focused on one branch of a
conditional experiment excludes the other branches.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr

from .. import _sampler
from ..domain.best import best_observations
from ..domain.encoding import Encoder
from ..domain.model import Experiment, Observation
from .base import SuggestRequest
from .gp import GaussianProcess
from .gp.acquisition import log_expected_improvement
from .gp.fantasy import Fantasies
from .gp.model import NOISE_PRIOR_MEDIAN
from .gp.scoring import AcquisitionScorer
from .models import ConstraintModel
from .priors import UnitPrior, log_density

# the scorer of candidates: the compiled kernel, or NumPy (the reference)
BACKEND: Literal["rust", "numpy"] = "rust"
# penalty radius around pending points while there is no incumbent, in length scales
PENDING_RADIUS = 0.5
# Pending points handled at once by the pending penalty (bounds its memory).
PENDING_BLOCK = 256
# joint draws of the pending outcomes EI is averaged over (Snoek et al. 2012)
FANTASIES = 16
# Uniform feasible draws over which, with the training points, the local
# penalty's Lipschitz constant is the largest slope of the posterior mean
# (Gonzalez et al. 2016 take it over the whole domain).
LIPSCHITZ_DRAWS = 512
# Noisy EI applies once the fitted noise variance exceeds the median of its prior
# (the outcomes' variance being 1): then the data, not the prior, say the
# outcomes are noisy. Below, few points leave the noise at the prior's pull, or
# the fit sits at its floor on exact data, and an incumbent drawn with that noise
# would only make the search wander (measured: without this gate a noise-free
# constrained problem lost its fine steps; at 1e-4 the first suggestions on a
# noise-free rising function went to the wrong corner).
NEI_MIN_NOISE = NOISE_PRIOR_MEDIAN
# noisy EI's baseline: at most this many observed points, those whose posterior
# mean + NEI_WIDTH sd reaches the best mean - NEI_WIDTH sd (the others cannot be the best)
NEI_BASELINE = 32
NEI_WIDTH = 2.0
# the last fraction of a budget exploits: mean + kappa * std
EXPLOIT_FRACTION = 0.1
EXPLOIT_KAPPA = 0.5
# Parameter priors weight the acquisition by prior(x)^(beta / n) after n observations
# (piBO, Hvarfner et al. 2022), beta = budget / PRIOR_DECAY (n_trials / 10, SMAC's
# default); PRIOR_BUDGET stands in for an experiment without a budget.
PRIOR_DECAY = 10.0
PRIOR_BUDGET = 100
# in conditional experiments, every BRANCH_EVERY-th suggestion focuses on one branch
BRANCH_EVERY = 3
# ... once this many times the initial design has been observed
BRANCH_AFTER = 3

Penalty = Callable[[NDArray[np.float64]], NDArray[np.float64]]


class Acquisition:
    """The acquisition value of candidate rows for one suggestion.

    Args:
        model: the GP the candidates are scored under (pending points believed).
        incumbent: the value to improve on; None while no observation meets
            every constraint metric (the search is then for feasibility alone).
        exploit: whether the suggestion is in the last part of its budget.
        encoder: the experiment's encoder.
        penalty: a log-penalty near other solutions (``num_solutions > 1``).
        pending_penalty: a log-penalty near pending points.
        constraint_models: a GP and a threshold per constraint metric.
        taken: keys (``key_set``) of observed and pending rows, excluded.
        branch: the branch the suggestion focuses on, if any.
        priors: the parameters' priors and the exponent of their density
            (``prior_exponent``), or None.
        fantasies: the model conditioned on draws of the pending outcomes
            (``pending_fantasies``): EI is their average; None scores under ``model``.
    """

    def __init__(
        self,
        model: GaussianProcess,
        incumbent: float | None,
        exploit: bool,
        encoder: Encoder,
        penalty: Penalty | None,
        pending_penalty: Penalty | None,
        constraint_models: list[ConstraintModel],
        taken: set[bytes],
        branch: dict[str, int] | None,
        priors: tuple[list[UnitPrior], float] | None = None,
        fantasies: Fantasies | None = None,
    ) -> None:
        self.model = model
        # EI averaged over the pending outcomes, in place of the believer's EI
        self.fantasies = fantasies
        self.incumbent = incumbent
        self.exploit = exploit
        self.scorer = (
            None if incumbent is None else AcquisitionScorer(model, incumbent, backend=BACKEND)
        )
        self.encoder = encoder
        self.penalty = penalty
        self.pending_penalty = pending_penalty
        self.constraint_models = constraint_models
        self.taken = taken
        self.branch = branch
        # the final stretch's upper confidence bound is not a log acquisition: no prior
        self.priors = None if exploit else priors

    @property
    def plain(self) -> bool:
        """Whether the acquisition is log EI alone, averaged over the fantasies where
        there are some: what the compiled maximizer maximizes."""
        return self.pending_penalty is None and self.polishable

    @property
    def compiled(self) -> bool:
        """Whether the compiled maximizer computes this acquisition: log EI alone,
        averaged over the fantasies where there are some, plus the local penalty
        of the points in flight where there are some."""
        if not self.polishable:
            return False
        return self.pending_penalty is None or self.compiled_penalty is not None

    @property
    def compiled_penalty(self) -> _sampler.LocalPenalty | None:
        """The pending points' penalty as the compiled maximizer takes it (None:
        no points in flight, or a penalty it does not cover)."""
        penalty = self.pending_penalty
        return penalty.compiled if isinstance(penalty, LocalPenalty) else None

    @property
    def polishable(self) -> bool:
        """Whether the acquisition is log EI alone up to the pending penalty: what the
        gradient polish ascends (a polished point is kept only if its full value rises)."""
        return self.penalty is None and not self.constraint_models and self.priors is None

    def __call__(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """The acquisition value of each row."""
        if self.scorer is None:
            value = np.zeros(len(rows))
        elif self.exploit:
            # the last suggestions of a budget refine the best region (upper confidence bound)
            value = self.upper_bound(*self.scorer.predict(rows))
        elif self.fantasies is not None:
            value = self.fantasies.log_ei(rows)
        else:
            value = self.scorer.log_ei(rows)
        return self.finish(rows, value)

    def of_posterior(
        self,
        rows: NDArray[np.float64],
        mean: NDArray[np.float64],
        var: NDArray[np.float64],
        constraint_terms: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """The acquisition value of rows whose posterior and constraint terms are known."""
        if self.incumbent is None:
            value = np.zeros(len(mean))
        elif self.exploit:
            value = self.upper_bound(mean, var)
        else:
            value = log_expected_improvement(mean, np.sqrt(var), self.incumbent)
        return self.finish(rows, value, constraint_terms)

    def upper_bound(
        self, mean: NDArray[np.float64], var: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """The final stretch's upper confidence bound, in the model's standardized units.

        The other terms are logs (of a probability, of a penalty) added to it:
        local penalization multiplies a positive transform of the acquisition by
        its penalties (Gonzalez et al. 2016), and ``exp(bound)`` is one whose log
        is the bound. In the metric's own units the weight of those terms would
        depend on the units: with every value scaled by 1000, the constraint
        metrics and the points in flight would count for nothing.
        """
        model = self.model
        return (mean - model.y_mean + EXPLOIT_KAPPA * np.sqrt(var)) / model.y_std

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
        if self.priors is not None:
            unit, exponent = self.priors
            value = value + exponent * log_density(unit, rows)
        value[self.excluded(rows)] = -np.inf
        return value

    def excluded(self, rows: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Rows already observed or pending, or outside the focused branch."""
        keys = row_keys(rows)
        out = np.fromiter((k.tobytes() in self.taken for k in keys), bool, len(keys))
        if self.branch is not None:
            out |= ~in_branch(self.encoder, rows, self.branch)
        return out


def prior_exponent(exp: Experiment, observed: int) -> float:
    """piBO's ``beta / n``: the prior's weight, decaying with the observations."""
    budget = exp.observation_budget or PRIOR_BUDGET
    return budget / PRIOR_DECAY / max(observed, 1)


def solution_penalty(
    exp: Experiment,
    done: list[Observation],
    x_done: NDArray[np.float64],
    sequence: int,
    gp: GaussianProcess,
) -> Penalty | None:
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


def with_pending(
    gp: GaussianProcess,
    incumbent: float | None,
    pending: NDArray[np.float64],
    encoder: Encoder,
    branch: dict[str, int] | None,
    constraint_models: list[ConstraintModel],
    domain: NDArray[np.float64] | None = None,
) -> tuple[GaussianProcess, float | None, Penalty | None]:
    """How pending points (open suggestions, earlier points of a batch) enter a
    suggestion: the model, the incumbent and a log-penalty to score under
    (``domain``: encoded draws of the feasible set, for its Lipschitz constant).

    The model believes them (kriging believer: observed at its own posterior
    mean, so the variance collapses there) and the incumbent counts their
    believed values, so expected improvement vanishes at them; the local
    penalization of Gonzalez et al. (2016) then keeps the next point out of
    the ball each may rule out. While no observation meets every constraint
    metric there is no incumbent, and a fixed penalty of half a length scale
    spreads the search for feasibility instead.
    """
    if len(pending) == 0:
        return gp, incumbent, None
    believing = gp.believe(pending)
    if incumbent is None:
        return believing, None, pending_penalty(pending, gp)
    believed = believed_incumbent(incumbent, gp, pending, encoder, branch, constraint_models)
    assert believed is not None
    return believing, believed, local_penalty(pending, gp, believed, domain)


def believed_incumbent(
    incumbent: float | None,
    gp: GaussianProcess,
    pending: NDArray[np.float64],
    encoder: Encoder,
    branch: dict[str, int] | None,
    constraint_models: list[ConstraintModel],
) -> float | None:
    """The incumbent once pending points count as observations of their posterior
    mean (kriging believer): the best of ``incumbent`` and the believed values of
    the pending points in the branch that the constraint models expect to hold.

    Without this, EI stays positive at a pending point believed better than the
    incumbent and the next suggestion lands next to it; with it, EI vanishes at
    every pending point and shrinks around it as far as the model correlates.
    """
    if incumbent is None or len(pending) == 0:
        return incumbent
    rows = eligible_pending(pending, encoder, branch, constraint_models)
    if len(rows) == 0:
        return incumbent
    return max(incumbent, float(np.max(gp.mean(rows))))


def eligible_pending(
    pending: NDArray[np.float64],
    encoder: Encoder,
    branch: dict[str, int] | None,
    constraint_models: list[ConstraintModel],
) -> NDArray[np.float64]:
    """The pending rows that may become the incumbent: in the branch, and expected
    by the constraint models to meet every constraint metric."""
    rows = pending[in_branch(encoder, pending, branch)]
    for model, threshold in constraint_models:
        if len(rows):
            rows = rows[model.predict(rows)[0] >= threshold]
    return rows


def pending_fantasies(
    gp: GaussianProcess,
    believing: GaussianProcess,
    incumbent: float | None,
    pending: NDArray[np.float64],
    encoder: Encoder,
    branch: dict[str, int] | None,
    constraint_models: list[ConstraintModel],
    rng: np.random.Generator,
) -> Fantasies | None:
    """EI integrated over the pending points' unknown outcomes (Snoek et al. 2012,
    section 3.3): ``FANTASIES`` joint draws of the outcomes from the posterior of
    ``gp`` (drawn from ``rng``, so the suggestion stays reproducible), the model
    conditioned on each (``believing`` shares its factor), each fantasy with its
    own incumbent: the best of ``incumbent`` (before believing) and its own
    values at the eligible pending points.

    Unlike the kriging believer, which puts every pending outcome at its mean,
    the average keeps the chance that a pending point disappoints, so the
    region around it keeps some of its value.

    Returns:
        None without an incumbent or pending points, or where believing failed.
    """
    observed = len(gp.x_train)
    if incumbent is None or len(pending) == 0 or len(believing.x_train) == observed:
        return None
    draws = rng.standard_normal((len(believing.x_train) - observed, FANTASIES))
    try:
        fantasies = Fantasies(believing, observed, draws, backend=BACKEND)
    except np.linalg.LinAlgError:
        return None
    fantasies.set_incumbents(
        incumbent, eligible_pending(pending, encoder, branch, constraint_models)
    )
    return fantasies


def noisy_fantasies(
    gp: GaussianProcess, baseline: NDArray[np.float64], rng: np.random.Generator
) -> Fantasies | None:
    """Noisy expected improvement (Letham et al. 2019, what Ax's qLogNEI computes):
    EI averaged over ``FANTASIES`` joint draws of the latent values at the observed
    points that may be the best (``baseline``, rows of ``gp``'s data), the model
    conditioned on each draw without noise, each draw's incumbent its best value.

    Under noise the best observation is uncertain: EI over the best posterior mean
    takes that mean as known, and then neither samples again near a best point
    that may have been lucky nor near one that may have been unlucky. As the
    noise vanishes this becomes EI over the best observation.

    Returns:
        None where the fitted noise is below ``NEI_MIN_NOISE`` or there is no
        baseline (EI over the best posterior mean applies), or where conditioning
        failed.
    """
    hyper = gp.hyperparameters
    if len(baseline) == 0 or hyper is None or hyper.noise < NEI_MIN_NOISE:
        return None
    mean, var = gp.predict(baseline)
    sd = np.sqrt(var)
    # only points whose upper bound reaches the best lower bound may be the best
    keep = np.argsort(-mean)[:NEI_BASELINE]
    keep = keep[mean[keep] + NEI_WIDTH * sd[keep] >= np.max(mean - NEI_WIDTH * sd)]
    # a point observed twice has one latent value: conditioning on it twice would
    # make the factor singular
    _, first = np.unique(row_keys(baseline[keep]), return_index=True)
    rows = baseline[keep[np.sort(first)]]
    extended = gp.believe(rows, noiseless=True)
    observed = len(gp.x_train)
    if len(extended.x_train) != observed + len(rows):
        return None
    draws = rng.standard_normal((len(rows), FANTASIES))
    try:
        fantasies = Fantasies(extended, observed, draws, backend=BACKEND)
    except np.linalg.LinAlgError:
        return None
    fantasies.set_incumbents(-np.inf, rows)
    return fantasies


def local_penalty(
    pending: NDArray[np.float64],
    gp: GaussianProcess,
    incumbent: float,
    domain: NDArray[np.float64] | None = None,
) -> LocalPenalty | None:
    """The local penalty of ``pending`` under ``gp`` (``LocalPenalty``), with
    ``L`` the largest norm of the gradient of the posterior mean (in length
    scales) at the training points and at the encoded rows ``domain``; None
    where there is no point or no slope.

    The training points alone underestimate ``L``: the mean is often steepest
    between them, and a small ``L`` gives every pending point expected to be
    poor a wide ball, which pushes the batch away from the good regions."""
    if len(pending) == 0:
        return None
    rows = gp.x_train if domain is None else np.vstack([gp.x_train, gp.features(domain)])
    lipschitz = mean_gradient_norm(gp, rows)
    if not np.isfinite(lipschitz) or lipschitz <= 0.0:
        return None
    return LocalPenalty(pending, gp, incumbent, lipschitz)


class LocalPenalty:
    """Local penalization of pending points (Gonzalez et al. 2016, "Batch Bayesian
    optimization via local penalization"), as a log-penalty.

    With ``L`` a Lipschitz constant of the objective, a pending point ``x_j``
    whose value turns out to be ``f_j`` cannot have the maximum ``M`` within
    ``(M - f_j) / L`` of it; with ``f_j ~ N(mu_j, s_j^2)`` under the model, the
    probability that ``x`` lies outside that ball is
    ``Phi((L |x - x_j| - M + mu_j) / s_j)``. Pending points the model expects to be
    poor exclude a wide ball; those expected near the incumbent a narrow one,
    so refinement next to the incumbent goes on. Distances are in length
    scales of the kernel's inputs (the arc kernel's, in a conditional space).

    Args:
        pending: (P, D) encoded pending rows.
        gp: the model without them.
        incumbent: ``M``.
        lipschitz: ``L``, in length scales.
    """

    def __init__(
        self, pending: NDArray[np.float64], gp: GaussianProcess, incumbent: float, lipschitz: float
    ) -> None:
        self.pending = pending
        self.gp = gp
        self.incumbent = incumbent
        self.lipschitz = lipschitz
        self.mean, var = gp.predict(pending)
        self.std = np.sqrt(var)
        self.scale = gp.feature_lengthscales
        self.scaled_pending = gp.features(pending) / self.scale

    def __call__(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """The log-penalty of each row."""
        scaled = self.gp.features(rows) / self.scale
        total = np.zeros(len(rows))
        for start in range(0, len(self.pending), PENDING_BLOCK):
            block = self.scaled_pending[start : start + PENDING_BLOCK]
            d2 = (scaled**2).sum(axis=1)[:, None] + (block**2).sum(axis=1)[None, :]
            d2 -= 2.0 * (scaled @ block.T)
            d = np.sqrt(np.maximum(d2, 0.0))
            part = slice(start, start + PENDING_BLOCK)
            z = (self.lipschitz * d - self.incumbent + self.mean[None, part]) / self.std[None, part]
            total += log_ndtr(z).sum(axis=1)
        return total

    @cached_property
    def compiled(self) -> _sampler.LocalPenalty | None:
        """The same penalty for the compiled maximizer, where the kernel's inputs
        are the encoded rows (not on a conditional space: None); None too where
        the posterior at the points is not finite (the NumPy maximizer then runs)."""
        if self.gp.input_map is not None:
            return None
        posterior = np.concatenate([self.mean, self.std, [self.incumbent]])
        if not (np.all(np.isfinite(posterior)) and np.all(self.std > 0.0)):
            return None
        return _sampler.LocalPenalty(
            np.ascontiguousarray(self.pending, dtype=np.float64),
            np.ascontiguousarray(self.scale, dtype=np.float64),
            np.ascontiguousarray(self.mean, dtype=np.float64),
            np.ascontiguousarray(self.std, dtype=np.float64),
            float(self.lipschitz),
            float(self.incumbent),
        )


def mean_gradient_norm(gp: GaussianProcess, rows: NDArray[np.float64]) -> float:
    """The largest norm of the posterior mean's gradient at ``rows``, in length scales.

    ``rows`` are the kernel's inputs (like ``gp.x_train``, or ``gp.features``
    of encoded rows), and the gradient is in them.
    """
    if len(rows) == 0:
        return 0.0
    ell, s = gp.feature_lengthscales, gp.outputscale
    best = 0.0
    train, alpha, mixture = gp.x_train, gp.alpha, gp.input_map
    # the kernel's Matern terms: over every input, then (a conditional space's
    # mixture) over each additive group's inputs, each scaled per point
    terms: list[NDArray[np.int64] | None] = [None]
    train_scales = None
    if mixture is not None:
        terms += list(mixture.group_inputs)
        train_scales = mixture.scales(train)
    for start in range(0, len(rows), 256):
        x = rows[start : start + 256]
        grad = np.zeros_like(x)
        x_scales = mixture.scales(x) if mixture is not None else None
        for t, cols in enumerate(terms):
            if cols is None:
                xs, ts, ls = x, train, ell
            else:
                xs, ts, ls = x[:, cols], train[:, cols], ell[cols]
            # Matern-5/2: dk/dr * dr/dx, smooth at r = 0
            a, b = xs / ls, ts / ls
            d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * (a @ b.T)
            r5 = np.sqrt(5.0 * np.maximum(d2, 0.0))
            c = -s * 5.0 / 3.0 * (1.0 + r5) * np.exp(-r5)  # (m, n)
            if x_scales is not None and train_scales is not None:
                c *= np.outer(x_scales[:, t], train_scales[:, t])
            ca = c * alpha[None, :]
            # d mean / d(x / ell) = y_std * sum_i ca_i (x - x_i) / ell
            part = (xs * ca.sum(1)[:, None] - ca @ ts) / ls
            if cols is None:
                grad += part
            else:
                grad[:, cols] += part
        best = max(best, float(np.max(np.sqrt((grad**2).sum(1)))) * gp.y_std)
    return best


def pending_penalty(pending: NDArray[np.float64], gp: GaussianProcess) -> Penalty | None:
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


def branch_turn(encoder: Encoder, sequence: int) -> dict[str, int] | None:
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


def in_branch(
    encoder: Encoder, rows: NDArray[np.float64], branch: dict[str, int] | None
) -> NDArray[np.bool_]:
    """Rows whose conditionals take the branch's values (all rows without a branch)."""
    mask = np.ones(len(rows), dtype=bool)
    for name, index in (branch or {}).items():
        mask &= rows[:, encoder.slices[name].start + index] == 1.0
    return mask


def final_stretch(request: SuggestRequest, offset: int) -> bool:
    """Whether this suggestion falls in the last part of the observation budget.

    The part is lengthened by the points in flight (pending, and earlier points
    of the batch): an outcome is seen only that many suggestions later, so
    with q workers the stretch starts q - 1 earlier for its later points to
    refine on its earlier ones, as one worker's do. With nothing pending it is
    the last ``EXPLOIT_FRACTION`` of the budget.
    """
    budget = request.experiment.observation_budget
    if not budget or EXPLOIT_FRACTION <= 0:
        return False
    in_flight = len(request.pending) + offset
    used = len(request.observations) + in_flight
    return budget - used <= max(1, round(EXPLOIT_FRACTION * budget)) + in_flight


def key_set(rows: NDArray[np.float64]) -> set[bytes]:
    """The keys of ``rows`` as a set, for membership tests."""
    return {k.tobytes() for k in row_keys(rows)}


def row_keys(rows: NDArray[np.float64]) -> NDArray[np.void]:
    """Hashable keys of canonical rows (rounded, so re-encoded points match)."""
    rounded = np.ascontiguousarray(np.round(rows, 9) + 0.0)  # + 0.0 folds -0.0 into 0.0
    return rounded.view(np.dtype((np.void, rounded.dtype.itemsize * rounded.shape[1]))).ravel()
