"""Two optimized metrics: expected hypervolume improvement (EHVI).

One GP per optimized metric, each with its own chain of hyperparameter fits
(``hyperfit``), so a suggestion depends only on the experiment, its seed and
its history. A candidate is worth the expected gain in hypervolume over the
Pareto front of the observations, for two independent Gaussian posteriors in
closed form (Emmerich et al. 2006; the box decomposition of Yang et al. 2019:
m + 1 cells for m front points, O(m) per candidate), evaluated in log space
as in Ament et al. 2023 ("Unexpected improvements to expected improvement")
so that it stays finite and increasing far from the front, where EHVI itself
underflows to a flat zero.

- The front is the observed values (warped as the GP's outputs, which keeps
  dominance) of the successful observations meeting every constraint metric:
  the hypervolume a user holds is that of observed values, and with two
  metrics no noise is modelled beyond the GP's fitted nugget.
- The reference point is the front's nadir less a tenth of its range, as
  BoTorch's ``infer_reference_point``; a metric's threshold raises it (the
  region of interest).
- Constraint metrics multiply in their probability of holding, failed
  observations take each metric's worst value, and pending points (open
  suggestions, earlier points of a batch) are believed on both GPs and join
  the front at their posterior means, so that concurrent suggestions spread.
- Above ``EHVI_MAX_POINTS`` modelled observations the per-suggestion ParEGO
  scalarization of ``training`` takes over (``applies``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from ..domain.model import Assignments
from . import acquisition as acq
from . import hyperfit, maximizer, models, training
from .base import SuggestRequest
from .feasible import FeasibleSpace
from .gp import GaussianProcess, Hyperparameters, log_expected_improvement
from .gp.scoring import AcquisitionScorer
from .priors import unit_priors
from .training import History, TrainingData

# Above this many modelled observations (successful and failed), ParEGO instead:
# two exact GPs per call cost twice the scalarized one (see the README's Limits).
EHVI_MAX_POINTS = models.EXACT_MAX_POINTS
# reference point: the front's nadir less this fraction of the front's range
REF_MARGIN = 0.1
# local candidates are drawn around this many front points, largest contribution first
FRONT_STARTS = 8
_CHAIN_STREAM = 2  # random stream of the per-metric chains' fits (after training's)

Transform = Callable[[float], float]


def applies(history: History) -> bool:
    """Whether EHVI suggests for this history (two optimized metrics, exact size)."""
    modelled = int(history.usable.sum() + history.failed.sum())
    return len(history.experiment.optimized_metrics) == 2 and modelled <= EHVI_MAX_POINTS


def warp(y: NDArray[np.float64]) -> tuple[NDArray[np.float64], Transform]:
    """``training.warp`` (Yeo-Johnson on a long bad tail), and the same map for
    other values (thresholds)."""
    return training.warp_map(y) if training.WARP_OUTPUTS else (y, lambda v: v)


def metric_data(history: History, j: int) -> tuple[TrainingData, Transform]:
    """The training data of optimized metric ``j`` (signed, larger is better,
    warped; failed observations at its worst value), and its warp."""
    done = history.usable
    y_done, transform = warp(history.values[done, j])
    n_failed = int(history.failed.sum())
    x = np.vstack([history.x[done], history.x[history.failed]])
    y = np.concatenate([y_done, np.full(n_failed, y_done.min())])
    return TrainingData(x, y, None, int(done.sum()), history.feasible[done]), transform


def _chain_fit(
    history: History, j: int, size: int, start: Hyperparameters | None
) -> GaussianProcess:
    data, _ = metric_data(history.prefix(size), j)
    seed = history.experiment.seed
    groups = models.length_scale_groups(history.experiment)
    return models.objective_gp(history.experiment, None, groups).fit(
        data.x,
        data.y,
        warm_start=start,
        rng=np.random.default_rng([seed, size, _CHAIN_STREAM, j]),
    )


def metric_model(history: History, j: int) -> tuple[GaussianProcess, TrainingData, Transform]:
    """The GP of optimized metric ``j`` on the whole history, its hyperparameters
    from the metric's own chain of fits."""
    key = hashlib.blake2b(
        models.chain_key(history.experiment) + b"ehvi" + bytes([j]), digest_size=16
    ).digest()
    chain = hyperfit.Chain(
        key, history, models.first_modelled(history), functools.partial(_chain_fit, history, j)
    )
    size = len(history)
    data, transform = metric_data(history, j)
    # the last checkpoint's fit, conditioned on the whole history in between
    hyper, fitted = chain.model(size)
    if fitted is not None:
        return fitted, data, transform
    if hyper is None:
        groups = models.length_scale_groups(history.experiment)
        gp = models.objective_gp(history.experiment, None, groups).fit(
            data.x, data.y, rng=np.random.default_rng([size, j])
        )
    else:
        gp = models.objective_gp(history.experiment, None).condition(data.x, data.y, hyper)
    return gp, data, transform


def pareto_front(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """The non-dominated rows of (n, 2) points (larger is better), without
    duplicates, sorted by the first coordinate ascending (the second descending)."""
    if len(points) == 0:
        return points.reshape(0, 2)
    # by the first coordinate descending, ties by the second descending: a row is
    # on the front when its second coordinate beats every row before it
    order = np.lexsort((-points[:, 1], -points[:, 0]))
    front, best = [], -np.inf
    for i in order:
        if points[i, 1] > best:
            front.append(points[i])
            best = points[i, 1]
    return np.array(front[::-1])


def reference_point(
    front: NDArray[np.float64], thresholds: list[float | None]
) -> NDArray[np.float64]:
    """The front's nadir less ``REF_MARGIN`` of its range (of the nadir's size
    when the range is zero), raised to each metric's threshold."""
    nadir, ideal = front.min(axis=0), front.max(axis=0)
    span = ideal - nadir
    span = np.where(span > 0, span, np.maximum(np.abs(nadir), 1.0))
    ref = nadir - REF_MARGIN * span
    for j, t in enumerate(thresholds):
        if t is not None:
            ref[j] = max(ref[j], t)
    return ref


def contributions(front: NDArray[np.float64], ref: NDArray[np.float64]) -> NDArray[np.float64]:
    """The hypervolume each point of a sorted front (``pareto_front``) alone adds."""
    a = np.concatenate([[ref[0]], front[:, 0]])
    b = np.concatenate([front[:, 1], [ref[1]]])
    return np.maximum(a[1:] - a[:-1], 0.0) * np.maximum(b[:-1] - b[1:], 0.0)


def hypervolume(front: NDArray[np.float64], ref: NDArray[np.float64]) -> float:
    """The area dominated by a sorted front (``pareto_front``) and above ``ref``."""
    above = front[np.all(front > ref, axis=1)]
    # strip i spans (a_{i-1}, a_i] in the first coordinate, up to b_i in the second
    widths = np.diff(np.concatenate([[ref[0]], above[:, 0]]))
    return float(np.sum(widths * (above[:, 1] - ref[1])))


def _log1mexp(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log(1 - exp(x))`` for ``x <= 0`` (-inf at 0)."""
    with np.errstate(divide="ignore"):
        return np.where(
            x > -np.log(2.0),
            np.log(-np.expm1(np.minimum(x, 0.0))),
            np.log1p(-np.exp(np.minimum(x, -np.log(2.0)))),
        )


def log_ehvi(
    mean: NDArray[np.float64],
    std: NDArray[np.float64],
    front: NDArray[np.float64],
    ref: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Log expected hypervolume improvement of two independent Gaussian outcomes
    over a front, for maximization.

    The region a new point ``y`` can add is split into the cells
    ``[a_i, a_{i+1}) x [b_{i+1}, inf)`` of the sorted front (``a_0 = r_1``,
    ``a_{m+1} = inf``, ``b_{m+1} = r_2``); ``y`` adds
    ``(min(y_1, a_{i+1}) - a_i)^+ (y_2 - b_{i+1})^+`` in cell ``i``, and with
    independent outcomes the expectation of each factor is an expected
    improvement: ``E[(Y - l)^+] - E[(Y - u)^+]`` and ``E[(Y - l)^+]``.

    Args:
        mean: (k, 2) posterior means.
        std: (k, 2) posterior stddevs.
        front: (m, 2) the front (``pareto_front``); points not above ``ref`` are ignored.
        ref: (2,) the reference point.

    Returns:
        (k,) log EHVI (-inf where no improvement is possible).
    """
    above = front[np.all(front > ref, axis=1)]
    lower1 = np.concatenate([[ref[0]], above[:, 0]])  # a_i, i = 0..m
    upper1 = np.concatenate([above[:, 0], [np.inf]])  # a_{i+1}
    lower2 = np.concatenate([above[:, 1], [ref[1]]])  # b_{i+1}
    m1, s1 = mean[:, :1], std[:, :1]
    m2, s2 = mean[:, 1:], std[:, 1:]
    log_lower = log_expected_improvement(m1, s1, lower1[None, :])
    log_upper = log_expected_improvement(m1, s1, upper1[None, :-1])
    first = log_lower.copy()
    first[:, :-1] = log_lower[:, :-1] + _log1mexp(log_upper - log_lower[:, :-1])
    second = log_expected_improvement(m2, s2, lower2[None, :])
    with np.errstate(divide="ignore"):
        return np.asarray(logsumexp(first + second, axis=1))


class EHVI:
    """The log-EHVI acquisition of one suggestion: the models, the front and
    every other term of ``acquisition.Acquisition`` (constraint metrics,
    priors, observed and pending points excluded)."""

    def __init__(
        self,
        gps: list[GaussianProcess],
        front: NDArray[np.float64] | None,
        ref: NDArray[np.float64] | None,
        rest: acq.Acquisition,
    ) -> None:
        self.gps = gps
        # the compiled posterior where available (the candidates are many)
        self.scorers = [AcquisitionScorer(gp, 0.0, backend=acq.BACKEND) for gp in gps]
        self.front = front
        self.ref = ref
        self.rest = rest

    def __call__(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.front is None or self.ref is None:
            # no observation meets every constraint metric yet: feasibility alone
            return self.rest.finish(rows, np.zeros(len(rows)))
        mean = np.empty((len(rows), 2))
        std = np.empty((len(rows), 2))
        for j, scorer in enumerate(self.scorers):
            m, v = scorer.predict(rows)
            mean[:, j], std[:, j] = m, np.sqrt(v)
        return self.rest.finish(rows, log_ehvi(mean, std, self.front, self.ref))


def suggest(request: SuggestRequest, space: FeasibleSpace, history: History) -> list[Assignments]:
    """``request.count`` points, each maximizing log EHVI with the earlier ones believed."""
    exp = request.experiment
    encoder = space.encoder
    fitted = [metric_model(history, j) for j in range(2)]
    gps = [gp for gp, _, _ in fitted]
    data = fitted[0][1]
    x_done = data.x_done
    observed = np.column_stack([d.y_done for _, d, _ in fitted])
    feasible = data.feasible
    thresholds: list[float | None] = []
    for j, ((_, _, transform), metric) in enumerate(
        zip(fitted, exp.optimized_metrics, strict=True)
    ):
        signed = training.scaled_threshold(metric, history.scales[j])
        thresholds.append(None if signed is None else float(transform(signed)))
    front = pareto_front(observed[feasible]) if feasible.any() else None
    ref = None if front is None else reference_point(front, thresholds)
    done = history.done
    constraint_models = models.constraint_models(
        exp, done, encoder, np.random.default_rng([exp.seed, request.sequence, _CHAIN_STREAM])
    )
    unit = unit_priors(exp, encoder)
    priors = (unit, acq.prior_exponent(exp, len(done))) if unit else None
    # local candidates around the front points that hold the most hypervolume alone
    if front is not None and ref is not None:
        index = {r.tobytes(): i for i, r in enumerate(observed)}
        ranked = np.argsort(-contributions(front, ref), kind="stable")[:FRONT_STARTS]
        best = np.array([x_done[index[front[i].tobytes()]] for i in ranked])
    else:
        best = maximizer.best_rows(x_done, observed.sum(axis=1), feasible)
    out: list[Assignments] = []
    for offset in range(request.count):
        rng = request.rng(offset)
        pending = [s.assignments for s in request.pending] + request.chosen
        x_pending = encoder.encode(pending) if pending else np.empty((0, encoder.dim))
        believing = [gp.believe(x_pending) for gp in gps]
        front_now = front
        pending_penalty = None
        if front is not None and len(x_pending):
            # kriging believer: pending points count at their posterior means
            believed = x_pending
            for model, threshold in constraint_models:
                believed = believed[model.predict(believed)[0] >= threshold]
            if len(believed):
                means = np.column_stack([gp.mean(believed) for gp in gps])
                front_now = pareto_front(np.vstack([front, means]))
        elif len(x_pending):
            pending_penalty = acq.pending_penalty(x_pending, gps[0])
        rest = acq.Acquisition(
            believing[0],
            None,
            False,
            encoder,
            None,
            pending_penalty,
            constraint_models,
            acq.key_set(np.vstack([data.x, x_pending])),
            None,
            priors,
        )
        score = EHVI(believing, front_now, ref, rest)
        rows = maximizer.candidates(space, best, rng)
        point, _, _ = maximizer.maximize(
            space, score, rows, score(rows), maximizer.REFINE_STARTS, rng, None
        )
        request.chosen.append(point)
        out.append(point)
    return out
