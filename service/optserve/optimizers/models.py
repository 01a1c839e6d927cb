"""The Bayesian optimizer's models: the GP of the objective and one per constraint metric.

Hyperparameters come from a chain of fits at fixed history sizes
(``hyperfit``), so a model depends only on the experiment, its seed and its
history. Up to ``EXACT_MAX_POINTS`` modelled observations (successful and
failed) the GP of the objective is exact: its hyperparameters are those of
the last checkpoint (refitted when the history reaches one), the GP
conditioned on the whole history. Beyond, it is an exact GP on a training
subset of ``SUBSET_SIZE`` observations (``gp/subset.py``: the incumbents'
neighbourhoods and a space-filling cover), with the same hyperparameters.

In a conditional search space every GP sees a conditional numeric parameter
through the arc kernel (``gp/inputs.py``): where the parameter is inactive it
is equally far from all of its values instead of sitting at one of them; and
half of the kernel is additive over the groups of parameters active together,
so that what the branches share carries from one branch into another.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np
from numpy.typing import NDArray

from ..domain.encoding import Encoder
from ..domain.model import Experiment, Observation, Parameter, ParameterType
from . import hyperfit, training
from .feasible import feasible_space, space_key
from .gp import GaussianProcess, Hyperparameters, subset
from .gp.inputs import ArcColumn, InputMap
from .initial_design import initial_design_size
from .training import History, TrainingData, sign

# Above this many modelled observations (successful and failed) the GP is fitted
# and conditioned on a training subset of SUBSET_SIZE of them.
EXACT_MAX_POINTS = 500
SUBSET_SIZE = 500
# above EXACT_MAX_POINTS: points of the subset the hyperparameters are fitted on
SUBSET_FIT_POINTS = 300
# above EXACT_MAX_POINTS: points a constraint metric's hyperparameters are fitted on
CONSTRAINT_FIT_POINTS = 200
# margin on constraint metrics, as a fraction of their observed spread
CONSTRAINT_MARGIN = 0.01
_CHAIN_WEIGHTS = 1  # stream of the chain's scalarization weights (two metrics)

ConstraintModel = tuple[GaussianProcess, float]


class Models:
    """The models of one call: the chain of hyperparameter fits over its history."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.experiment = history.experiment
        self.input_map = input_map(self.experiment)
        self.groups = length_scale_groups(self.experiment)
        self.chain = hyperfit.Chain(
            chain_key(self.experiment),
            history,
            first_modelled(history),
            functools.partial(chain_fit, history),
        )

    @property
    def at_scale(self) -> bool:
        """Whether the history is beyond the exact GP's size."""
        return int(self.history.usable.sum() + self.history.failed.sum()) > EXACT_MAX_POINTS

    def choice_node(self) -> int | None:
        """The prefix the encoding is chosen at (``log_scale``): the chain's coarse
        node of the history, up to the exact size."""
        return self.chain.coarse_node(min(len(self.history), EXACT_MAX_POINTS))

    def density_at(self, size: int) -> float:
        """The posterior density (``GaussianProcess.log_posterior_density``) of the
        chain's fit on the first ``size`` observations, on that prefix's data;
        -inf below the first modelled prefix."""
        hyper = self.chain.hyperparameters(size)
        if hyper is None:
            return -math.inf
        data = chain_data(self.history, size)
        gp = objective_gp(self.experiment, self.input_map, self.groups)
        return gp.condition(data.x, data.y, hyper, data.noise).log_posterior_density()

    def checkpoint(self) -> int:
        """The last checkpoint of the history (at least the first modelled prefix):
        hyperparameters are refitted there only."""
        return self.chain.model_size(len(self.history))

    def exact(self, data: TrainingData, fit_rng: np.random.Generator) -> GaussianProcess:
        """The GP on all of ``data`` (the call's training data)."""
        chain = self.chain
        size = len(self.history)
        if len(self.experiment.optimized_metrics) == 1:
            # The last checkpoint's fit (the chain's own GP at a checkpoint),
            # conditioned on the whole history in between: a Cholesky, not a fit.
            hyper, fitted = chain.model(size)
            if fitted is not None:
                return fitted
            if hyper is not None:
                return objective_gp(self.experiment, self.input_map).condition(
                    data.x, data.y, hyper, data.noise
                )
            start = None
        else:
            # Scalarized per suggestion: warm-started from the chain's fit (fixed weights).
            parent = chain.parent(size)
            start = None if parent is None else chain.hyperparameters(parent)
        return objective_gp(self.experiment, self.input_map, self.groups).fit(
            data.x, data.y, data.noise, warm_start=start, rng=fit_rng
        )

    def subset_hyperparameters(self) -> Hyperparameters:
        """Above the exact size: the last checkpoint's hyperparameters."""
        hyper = self.chain.hyperparameters(self.checkpoint())
        return hyper or Hyperparameters.default(self.history.x.shape[1])


class SubsetModel:
    """Above the exact size: the training subset (chosen once per call, on its
    first scalarization) and the exact GP on it per output vector."""

    def __init__(
        self,
        exp: Experiment,
        hyper: Hyperparameters,
        data: TrainingData,
        arc: InputMap | None = None,
    ) -> None:
        self.experiment = exp
        self.hyper = hyper
        self.input_map = arc
        self.rows = subset.select(data.x, data.y, good_rows(data), SUBSET_SIZE, hyper.lengthscales)
        self.done_rows = self.rows[self.rows < data.n_done]
        self._gps: dict[bytes, GaussianProcess] = {}

    def gp(self, data: TrainingData) -> tuple[bytes, GaussianProcess]:
        """A key of the subset's outputs, and the GP on the subset of ``data``."""
        rows = self.rows
        key = data.y[rows].tobytes()
        if key not in self._gps:
            self._gps[key] = objective_gp(self.experiment, self.input_map).condition(
                data.x[rows],
                data.y[rows],
                self.hyper,
                None if data.noise is None else data.noise[rows],
            )
        return key, self._gps[key]


def objective_gp(
    exp: Experiment,
    arc: InputMap | None,
    groups: NDArray[np.intp] | None = None,
    **settings: int,
) -> GaussianProcess:
    """A GP of an optimized metric of ``exp``, or of their scalarization.

    With one optimized metric its constant mean is the worst value seen (De
    Ath, Fieldsend & Everson 2020). With the average as the mean, expected
    improvement far from every observation rests on the variance alone and
    goes to the box's corners; on a surface that is flat but for narrow peaks,
    or whose peaks noise hides, that spends the budget on the rim. With two
    the mean stays the average: the front's extent is what is sought, and a
    pessimistic mean per metric held the hypervolume back (ZDT1 at budget 30,
    -1.47 -> -1.11). A constraint metric's GP keeps the average too: its
    mean is a probability's centre, not a hope to be tempered.
    """
    return GaussianProcess(
        input_map=arc,
        length_scale_groups=groups,
        worst_mean=len(exp.optimized_metrics) == 1,
        **settings,
    )


def chain_key(exp: Experiment) -> bytes:
    """What the chain's fits depend on besides the history."""
    settings: tuple[object, ...] = (
        space_key(exp),
        exp.metrics,
        initial_design_size(exp),
        EXACT_MAX_POINTS,
        SUBSET_SIZE,
        SUBSET_FIT_POINTS,
        training.WARP_OUTPUTS,
        training.WARP_SKEW,
    )
    arc = input_map(exp)
    if arc is not None:  # (keys of other experiments unchanged)
        settings += (arc.key(),)
    return hashlib.blake2b(repr(settings).encode(), digest_size=16).digest()


def first_modelled(history: History) -> int | None:
    """The shortest prefix of the history with the initial design's worth of
    successful observations (None if the history has not)."""
    reached = np.flatnonzero(np.cumsum(history.usable) >= initial_design_size(history.experiment))
    return int(reached[0]) + 1 if len(reached) else None


def chain_data(history: History, size: int) -> TrainingData:
    """The training data of the chain's fit on the first ``size`` observations."""
    exp = history.experiment
    return history.prefix(size).training(np.random.default_rng([exp.seed, size, _CHAIN_WEIGHTS]))


def chain_fit(history: History, size: int, start: Hyperparameters | None) -> GaussianProcess:
    """The chain's fit on the first ``size`` observations, from ``start``."""
    exp = history.experiment
    data = chain_data(history, size)
    x, y, noise = data.x, data.y, data.noise
    arc, groups = input_map(exp), length_scale_groups(exp)
    model = objective_gp(exp, arc, groups)
    if len(x) > EXACT_MAX_POINTS:
        rows = subset.select(
            x, y, good_rows(data), SUBSET_SIZE, None if start is None else start.lengthscales
        )
        x, y, noise = x[rows], y[rows], None if noise is None else noise[rows]
        model = objective_gp(exp, arc, groups, max_fit_points=SUBSET_FIT_POINTS)
    return model.fit(x, y, noise, warm_start=start, rng=np.random.default_rng([exp.seed, size]))


def good_rows(data: TrainingData) -> NDArray[np.bool_]:
    """Rows of the training data that are successful and meet every constraint metric."""
    good = np.zeros(len(data.x), dtype=bool)
    good[: data.n_done] = data.feasible
    return good


def constraint_models(
    exp: Experiment,
    done: list[Observation],
    encoder: Encoder,
    rng: np.random.Generator,
    *,
    fit_points: int | None = None,
) -> list[ConstraintModel]:
    """A GP per constraint metric, with its threshold, both signed so that larger is better.

    With ``fit_points``, hyperparameters are fitted on at most that many points
    from the priors' medians and the noisy start only (no random starts).
    """
    models = []
    arc, groups = input_map(exp), length_scale_groups(exp)
    for metric in exp.constraint_metrics:
        rows = [o for o in done if o.value_of(metric.name) is not None]
        signed = sign(metric)
        y = np.array([signed * float(o.value_of(metric.name) or 0.0) for o in rows])
        scale = training.outcome_scale(y)  # values near the largest or smallest double
        threshold = training.scaled_threshold(metric, scale)
        if len(rows) < 2 or threshold is None:
            continue
        y *= scale
        model = (
            GaussianProcess(n_random_starts=1, input_map=arc, length_scale_groups=groups)
            if fit_points is None
            else GaussianProcess(
                max_fit_points=fit_points,
                n_random_starts=0,
                input_map=arc,
                length_scale_groups=groups,
            )
        )
        gp = model.fit(
            encoder.encode([o.assignments for o in rows]),
            y,
            rng=np.random.default_rng(rng.integers(2**63)),
        )
        # A small safety margin: the constrained optimum usually lies on the
        # boundary, and suggestions should land on its feasible side.
        margin = CONSTRAINT_MARGIN * float(np.std(y))
        models.append((gp, threshold + margin))
    return models


def length_scale_groups(exp: Experiment) -> NDArray[np.intp] | None:
    """A group label per encoded column, one group for the one-hot columns of
    each categorical parameter (None where there is no categorical parameter).

    A categorical parameter has one length scale, as in Hamming-distance kernels
    (Optuna's GPSampler, BoTorch's CategoricalKernel): with one per value, the
    fit on a few points makes some values near and others far on no evidence."""
    categorical = [p for p in exp.parameters if p.type is ParameterType.CATEGORICAL]
    if not categorical:
        return None
    encoder = feasible_space(exp).encoder
    groups = np.arange(encoder.dim)
    for p in categorical:
        columns = encoder.slices[p.name]
        groups[columns] = columns.start
    return groups


def input_map(exp: Experiment) -> InputMap | None:
    """The arc kernel's map of the experiment's conditional numeric parameters,
    with the groups of its additive half (None where there is none: the GP sees
    the encoded rows themselves, under the product kernel alone)."""
    if not exp.conditionals:
        return None
    encoder = Encoder(exp)
    arcs = [
        ArcColumn(encoder.slices[p.name].start, _condition_columns(exp, encoder, p))
        for p in exp.parameters
        if p.is_numeric and not _always_active(exp, p)
    ]
    shared = [
        encoder.slices[p.name].start
        for p in exp.parameters
        if p.is_numeric and _always_active(exp, p)
    ]
    return InputMap(encoder.dim, arcs, shared) if arcs else None


def _always_active(exp: Experiment, p: Parameter) -> bool:
    values = {k.name: set(k.values) for k in exp.conditionals}
    return all(values.get(name, set()) <= set(allowed) for name, allowed in p.conditions.items())


def _condition_columns(
    exp: Experiment, encoder: Encoder, p: Parameter
) -> tuple[tuple[int, ...], ...]:
    """Per condition of ``p``, the one-hot columns of its allowed values."""
    out = []
    for k in exp.conditionals:
        if k.name in p.conditions:
            start = encoder.slices[k.name].start
            allowed = set(p.conditions[k.name])
            out.append(tuple(start + i for i, v in enumerate(k.values) if v in allowed))
    return tuple(out)
