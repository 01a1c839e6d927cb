"""The Bayesian optimizer's maximizer of the acquisition, over feasible points only.

Where the acquisition is log EI alone (plus the local penalty of the points
in flight), the whole maximizer runs compiled (``compiled_maximizer``, the
same stages in Rust); this module is the reference and the path for every
other acquisition. (The compiled polish ascends log EI plus the penalty; this
one ascends log EI and keeps a polished point only if the whole value rises.)

Candidates are uniform draws of the feasible set (Rust hit-and-run) and
perturbations of the best observations; a local search with shrinking steps
runs from the best few, keeping only feasible points; where the acquisition is
log EI alone, a gradient polish (L-BFGS-B, or SLSQP under double constraints)
follows; the best feasible point wins. Above the exact GP's size the points
of a batch share one candidate pool (``CandidatePool``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import solve_triangular
from scipy.optimize import minimize

from ..domain.encoding import Encoder
from ..domain.model import Assignments, ParameterType
from . import compiled_maximizer
from .feasible import FeasibleSpace
from .gp import GaussianProcess, gradient
from .gp.fantasy import Fantasies
from .gp.model import covariance
from .gp.scoring import compiled_scorer

if TYPE_CHECKING:
    from .acquisition import Acquisition

# The maximizer of log EI alone: "rust" runs the whole of it compiled
# (``compiled_maximizer``) where it applies; "numpy" always runs this module's.
BACKEND: Literal["rust", "numpy"] = "rust"

GLOBAL_CANDIDATES = 768
LOCAL_CANDIDATES = 96  # per incumbent
INCUMBENTS = 4
REFINE_STEPS = (0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
REFINE_CANDIDATES = 48
REFINE_STARTS = 5
POLISH_STARTS = 2
POLISH_ITERATIONS = 40
# above the exact size: local searches of the second and later points of a batch
BATCH_REFINE_STARTS = 1

Score = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def candidates(
    space: FeasibleSpace, best_rows: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Uniform feasible draws, then feasible perturbations of ``best_rows``."""
    return np.vstack(
        [
            space.draw_rows(GLOBAL_CANDIDATES, rng),
            neighbours(space, best_rows, LOCAL_CANDIDATES, 0.1, rng)[0],
        ]
    )


def best_rows(
    x_done: NDArray[np.float64], y_done: NDArray[np.float64], feasible: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """The ``INCUMBENTS`` best successful rows, those meeting every constraint metric first."""
    # lexicographic: an offset in the metric's units would merge values in tiny units
    ranked = np.lexsort((-y_done, ~feasible))
    return x_done[ranked[:INCUMBENTS]]


def maximize_log_ei(
    space: FeasibleSpace,
    acquisition: Acquisition,
    best: NDArray[np.float64],
    rng: np.random.Generator,
) -> Assignments | None:
    """The compiled maximizer's point where the acquisition is log EI alone
    (averaged over fantasies where there are some, plus the local penalty of
    the points in flight where there are some), from uniform draws and
    perturbations of ``best``; None elsewhere (the NumPy maximizer then runs)."""
    if (
        BACKEND != "rust"
        or not compiled_maximizer.applies(space.experiment)
        or acquisition.incumbent is None
        or acquisition.exploit
        or not acquisition.compiled
        or acquisition.branch is not None
    ):
        return None
    fantasies = acquisition.fantasies
    if fantasies is not None:
        scorer = fantasies.compiled or compiled_scorer(fantasies.gp).with_means(fantasies.weights)
        incumbent: float | NDArray[np.float64] = fantasies.incumbents
    else:
        compiled = acquisition.scorer.compiled if acquisition.scorer is not None else None
        scorer = compiled or compiled_scorer(acquisition.model)
        incumbent = acquisition.incumbent
    found = compiled_maximizer.maximize_log_ei(
        space, scorer, incumbent, best, rng, acquisition.compiled_penalty
    )
    return None if found is None else found[0]


def maximize(
    space: FeasibleSpace,
    score: Score,
    rows: NDArray[np.float64],
    scores: NDArray[np.float64],
    starts: int,
    rng: np.random.Generator,
    polish_with: tuple[GaussianProcess | Fantasies, float] | None,
) -> tuple[Assignments, NDArray[np.float64], NDArray[np.float64]]:
    """The best feasible point: a local search from the ``starts`` best of
    ``rows`` (scored ``scores``), then a gradient polish of log EI under
    ``polish_with`` (a GP and an incumbent) when given.

    Returns:
        The point, and the refined rows with their scores.
    """
    top = np.argsort(-scores)[:starts]
    refined, values = refine(space, rows[top], scores[top], score, rng)
    if polish_with is not None:
        polish_best(space, *polish_with, refined, values, score)
    return pick(space, space.encoder, refined, values, rng), refined, values


def refine(
    space: FeasibleSpace,
    starts: NDArray[np.float64],
    values: NDArray[np.float64],
    score: Score,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Feasible local search from ``starts``, with shrinking steps."""
    for step in REFINE_STEPS:
        near, origin = neighbours(space, starts, REFINE_CANDIDATES, step, rng)
        if len(near) == 0:
            continue
        near_scores = score(near)
        for i in range(len(starts)):
            mine = np.flatnonzero(origin == i)
            if len(mine) and near_scores[mine].max() > values[i]:
                k = mine[np.argmax(near_scores[mine])]
                starts[i], values[i] = near[k], near_scores[k]
    return starts, values


def polish_best(
    space: FeasibleSpace,
    gp: GaussianProcess | Fantasies,
    incumbent: float,
    starts: NDArray[np.float64],
    values: NDArray[np.float64],
    score: Score,
) -> None:
    """Gradient polish of the best few ``starts``, in place where it improves them."""
    for i in np.argsort(-values)[:POLISH_STARTS]:
        polished = polish(space, gp, incumbent, starts[i])
        if polished is not None:
            polished_score = score(polished[None, :])[0]
            if polished_score > values[i]:
                starts[i], values[i] = polished, polished_score


def pick(
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


def polish(
    space: FeasibleSpace,
    gp: GaussianProcess | Fantasies,
    incumbent: float,
    row: NDArray[np.float64],
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
        if isinstance(gp, Fantasies):  # EI averaged over pending outcomes: own incumbents
            value, grad = gp.log_ei_and_grad(base)
        else:
            value, grad = gradient.log_ei_and_grad(gp, base, incumbent)
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


def neighbours(
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


class CandidatePool:
    """Candidates scored once under a GP, and rescored exactly when believed
    points are added to it: the mean does not change, and the variance loses
    the Schur complement's share ``|L_S^-1 (k_P(c) - B v_c)|^2``, where
    ``[B L_S]`` are the believed rows of the extended Cholesky factor.

    Args:
        gp: the GP (every later GP shares its inputs and factor).
        rows: (k, D) candidates.
        constraint_terms: (k,) their constraint terms (``Acquisition.constraint_terms``).
        capacity: the most candidates the pool will hold.
    """

    def __init__(
        self,
        gp: GaussianProcess,
        rows: NDArray[np.float64],
        constraint_terms: NDArray[np.float64],
        capacity: int,
    ) -> None:
        n, dim = len(gp.x_train), len(gp.lengthscales)  # rows are encoded (before any input map)
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
        kx = covariance(
            gp.x_train, gp.features(rows), gp.feature_lengthscales, gp.outputscale, gp.input_map
        )
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
        """Mean and variance under ``believing`` (``gp`` with believed points
        appended; ``gp`` has the pool's inputs and factor, its own outputs)."""
        n = len(gp.x_train)
        mean = gp.y_mean + gp.y_std * (self._kx[: self.size] @ gp.alpha)
        var = self._var[: self.size].copy()
        if len(believing.x_train) > n:
            hyper = believing.hyperparameters
            assert hyper is not None
            cross = covariance(
                believing.x_train[n:],
                believing.features(self.rows),
                believing.feature_lengthscales,
                hyper.outputscale,
                believing.input_map,
            )
            w = solve_triangular(
                believing.chol[n:, n:],
                cross - believing.chol[n:, :n] @ self._v[: self.size].T,
                lower=True,
                check_finite=False,
            )
            var -= np.einsum("ij,ij->j", w, w)
        return mean, gp.y_std**2 * np.maximum(var, 1e-12)
