"""`optserve plot EXPERIMENT --kind history|parallel|importance|pareto -o FILE.png`.

Figures are drawn by matplotlib without a display (the Agg renderer) from what the
server returns: the experiment, its observations and its best assignments.
"""

from __future__ import annotations

import argparse
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cli_client import (
    Client,
    CommandError,
    clip,
    fmt,
    minimizes,
    optimized_metrics,
    subcommand,
    table,
    value_of,
)
from .v1 import experiment_pb2, observation_pb2
from .v1 import service_pb2 as pb

KINDS = ("history", "parallel", "importance", "pareto")
FORMATS = (".png", ".svg", ".pdf")
IMPORTANCE_HELP = (
    "importance: the inverse length scales of a Gaussian process (Matérn-5/2, one length"
    " scale per input, maximum a posteriori hyperparameters: the model the optimizer"
    " uses) fitted to the successful observations of the metric on the unit-cube"
    " encoding of the parameters (log scale where the parameter is log-scaled; a"
    " categorical counts its largest one-hot column), normalized to sum to 1. A short"
    " length scale means the metric changes quickly along that parameter."
)
KIND_HELP = {
    "history": "each observation's value in order, and the best so far",
    "parallel": "parallel coordinates: one line per observation across the parameters,"
    " coloured by the metric",
    "importance": "relative importance of each parameter (see below)",
    "pareto": "the two optimized metrics of every observation and the Pareto front",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    kinds = "\n".join(
        textwrap.fill(v, 78, initial_indent=f"  {k:11} ", subsequent_indent=" " * 14)
        for k, v in KIND_HELP.items()
    )
    plot = subcommand(
        sub,
        "plot",
        "plot an experiment to a PNG file: history, parallel, importance, pareto",
        "  optserve plot 12 --kind history -o history.png\n"
        "  optserve plot 12 --kind parallel -o parallel.png\n"
        "  optserve plot 12 --kind importance --metric accuracy -o importance.png\n"
        "  optserve plot 14 --kind pareto -o front.png\n",
        _plot,
        description=f"Plot an experiment to an image file.\n\nkinds:\n{kinds}\n\n"
        + IMPORTANCE_HELP,
    )
    plot.add_argument("experiment", help="experiment id")
    plot.add_argument("--kind", choices=KINDS, default="history", help="default: history")
    plot.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="image file to write: .png (or .svg, .pdf)",
    )
    plot.add_argument(
        "--metric", help="metric to plot (default: the first optimized metric); not for pareto"
    )
    plot.add_argument("--width", type=float, default=8.0, help="inches (default 8)")
    plot.add_argument("--height", type=float, default=5.0, help="inches (default 5)")
    plot.add_argument("--dpi", type=int, default=120, help="pixels per inch (default 120)")


@dataclass
class Data:
    experiment: experiment_pb2.Experiment
    observations: list[observation_pb2.Observation]

    def metric(self, name: str | None) -> experiment_pb2.Metric:
        metrics = {m.name: m for m in self.experiment.metrics}
        if name is not None:
            if name not in metrics:
                raise CommandError(
                    f"{name!r} is not a metric of experiment {self.experiment.id}"
                    f" (its metrics: {', '.join(metrics)})"
                )
            return metrics[name]
        optimized = optimized_metrics(self.experiment)
        return optimized[0] if optimized else self.experiment.metrics[0]

    def feasible(self, obs: observation_pb2.Observation) -> bool:
        """Satisfies every constraint metric's threshold."""
        values = {v.name: v.value for v in obs.values}
        for m in self.experiment.metrics:
            if m.strategy != experiment_pb2.METRIC_STRATEGY_CONSTRAINT or not m.HasField(
                "threshold"
            ):
                continue
            v = values.get(m.name)
            if v is None or (v > m.threshold if minimizes(m) else v < m.threshold):
                return False
        return True


def _value(obs: observation_pb2.Observation, metric: str) -> float | None:
    for v in obs.values:
        if v.name == metric:
            return v.value
    return None


def _plot(args: argparse.Namespace) -> None:
    suffix = args.output.suffix.lower()
    if suffix not in FORMATS:
        raise CommandError(f"-o {args.output}: the file name ends in one of {', '.join(FORMATS)}")
    if not (0 < args.width <= 50 and 0 < args.height <= 50 and 10 <= args.dpi <= 600):
        raise CommandError("--width and --height are 0-50 inches, --dpi 10-600")
    if min(args.width, args.height) * args.dpi < 50:
        raise CommandError("--width and --height times --dpi must come to 50 pixels or more")
    if args.kind == "pareto" and args.metric:
        raise CommandError("--metric is not for pareto: it plots the two optimized metrics")
    client = Client(args)
    data = Data(client.experiment(args.experiment), client.observations(args.experiment))
    from matplotlib.figure import Figure

    fig = Figure(figsize=(args.width, args.height), layout="constrained")
    if args.kind == "history":
        _history(fig, data, data.metric(args.metric))
    elif args.kind == "parallel":
        _parallel(fig, data, data.metric(args.metric))
    elif args.kind == "importance":
        _importance(fig, data, data.metric(args.metric))
    else:
        front = client.call(
            "GetBestAssignments", pb.GetBestAssignmentsRequest(experiment_id=args.experiment)
        ).observations
        _pareto(fig, data, list(front))
    try:
        fig.savefig(args.output, dpi=args.dpi, format=suffix[1:])
    except OSError as error:
        raise CommandError(f"cannot write {args.output}: {error.strerror}") from None
    width, height = (round(x * args.dpi) for x in (args.width, args.height))
    print(f"wrote {args.output} ({args.kind}, {width}x{height} px)")


def _title(data: Data, what: str) -> str:
    exp = data.experiment
    return f"{clip(exp.name, 90)}\n{what} (experiment {exp.id})"


def _direction(metric: experiment_pb2.Metric) -> str:
    return f"{metric.name} ({'minimize' if minimizes(metric) else 'maximize'})"


def _successes(data: Data, metric: str) -> list[tuple[int, float, bool]]:
    """(position in order, value, feasible) of each observation reporting ``metric``."""
    out = []
    for i, obs in enumerate(data.observations, start=1):
        value = None if obs.failed else _value(obs, metric)
        if value is not None:
            out.append((i, value, data.feasible(obs)))
    return out


# ---------------------------------------------------------------- history


def _history(fig: Any, data: Data, metric: experiment_pb2.Metric) -> None:
    points = _successes(data, metric.name)
    if not points:
        raise CommandError(
            f"experiment {data.experiment.id} has no observation of {metric.name!r} to plot yet"
        )
    ax = fig.subplots()
    good = [(i, v) for i, v, ok in points if ok]
    bad = [(i, v) for i, v, ok in points if not ok]
    if good:
        ax.scatter(
            *zip(*good, strict=True),
            s=18,
            color="tab:blue",
            label="observation",
            gid="observations",
        )
    if bad:
        ax.scatter(
            *zip(*bad, strict=True),
            s=18,
            facecolors="none",
            edgecolors="tab:gray",
            label="violates a constraint metric",
            gid="infeasible",
        )
    failed = [i for i, obs in enumerate(data.observations, start=1) if obs.failed]
    if failed:
        low = min(v for _, v, _ in points)
        ax.scatter(
            failed, [low] * len(failed), marker="x", color="tab:red", label="failed", gid="failed"
        )
    best_x, best_y, best = [], [], None
    for i, v, ok in points:
        if ok and (best is None or (v < best if minimizes(metric) else v > best)):
            best = v
        if best is not None:
            best_x.append(i)
            best_y.append(best)
    if best_x:
        best_x.append(len(data.observations))
        best_y.append(best_y[-1])
        ax.step(best_x, best_y, where="post", color="tab:orange", lw=2, label="best so far")
    exp = data.experiment
    if exp.HasField("observation_budget"):
        ax.axvline(exp.observation_budget, color="black", ls="--", lw=1, label="budget")
    ax.set_xlabel("observation")
    ax.set_ylabel(_direction(metric))
    ax.set_title(_title(data, "history"), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")


# ---------------------------------------------------------------- parallel coordinates


def _axis_position(p: experiment_pb2.Parameter, value: Any) -> float:
    """Where a value sits on its parameter's axis, from 0 to 1."""
    if value is None:
        return math.nan
    if p.type == experiment_pb2.PARAMETER_TYPE_CATEGORICAL:
        values = list(p.categorical_values)
        if value not in values:
            return math.nan
        return 0.5 if len(values) == 1 else values.index(value) / (len(values) - 1)
    lo, hi = _range(p)
    x = float(value)
    if p.transformation == experiment_pb2.TRANSFORMATION_LOG and x > 0:
        x = math.log(x)
    return 0.5 if hi == lo else (x - lo) / (hi - lo)


def _range(p: experiment_pb2.Parameter) -> tuple[float, float]:
    lo, hi = (p.bounds.min, p.bounds.max) if p.HasField("bounds") else (min(p.grid), max(p.grid))
    if p.transformation == experiment_pb2.TRANSFORMATION_LOG:
        return math.log(lo), math.log(hi)
    return lo, hi


def _axis_labels(p: experiment_pb2.Parameter) -> list[tuple[float, str]]:
    if p.type == experiment_pb2.PARAMETER_TYPE_CATEGORICAL:
        values = list(p.categorical_values)
        return [(_axis_position(p, v), v) for v in values]
    lo, hi = (p.bounds.min, p.bounds.max) if p.HasField("bounds") else (min(p.grid), max(p.grid))
    return [(0.0, fmt(lo)), (1.0, fmt(hi))]


def _parallel(fig: Any, data: Data, metric: experiment_pb2.Metric) -> None:
    import numpy as np
    from matplotlib import cm, colors
    from matplotlib.collections import LineCollection

    points = _successes(data, metric.name)
    if not points:
        raise CommandError(
            f"experiment {data.experiment.id} has no observation of {metric.name!r} to plot yet"
        )
    # conditionals first, as categorical axes: they decide which parameters are active
    params = [
        experiment_pb2.Parameter(
            name=c.name,
            type=experiment_pb2.PARAMETER_TYPE_CATEGORICAL,
            categorical_values=c.values,
        )
        for c in data.experiment.conditionals
    ] + list(data.experiment.parameters)
    values = np.array([v for _, v, _ in points])
    lo, hi = float(values.min()), float(values.max())
    rows = []
    for i, v, _ in points:
        obs = data.observations[i - 1]
        row = [
            _axis_position(
                p, value_of(obs.assignments[p.name]) if p.name in obs.assignments else None
            )
            for p in params
        ]
        row.append(0.5 if hi == lo else (v - lo) / (hi - lo))
        rows.append(row)
    # the best lines are drawn last, on top
    better = values if not minimizes(metric) else -values
    order = np.argsort(better)
    xs = np.arange(len(params) + 1, dtype=float)
    # a line passes over the axes of inactive parameters
    segments = []
    for k in order:
        ys = np.array(rows[k])
        active = np.isfinite(ys)
        segments.append(np.column_stack([xs[active], ys[active]]))
    norm = colors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    colormap = _colormap("viridis_r" if minimizes(metric) else "viridis")
    ax = fig.subplots()
    lines = LineCollection(
        segments,
        colors=colormap(norm(values[order])),
        linewidths=1.2,
        alpha=0.75,
        gid="observations",
    )
    ax.add_collection(lines)
    for x in xs:
        ax.axvline(x, color="black", lw=0.8)
    for x, p in enumerate(params):
        for y, label in _axis_labels(p):
            ax.annotate(label, (x, y), xytext=(3, 0), textcoords="offset points", fontsize=7)
    ax.annotate(fmt(lo), (len(params), 0.0), xytext=(3, 0), textcoords="offset points", fontsize=7)
    ax.annotate(fmt(hi), (len(params), 1.0), xytext=(3, 0), textcoords="offset points", fontsize=7)
    ax.set_xlim(-0.2, len(params) + 0.4)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(xs, [p.name for p in params] + [metric.name], rotation=30, ha="right")
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    mappable = cm.ScalarMappable(norm=norm, cmap=colormap)
    fig.colorbar(mappable, ax=ax, label=_direction(metric))
    failed = sum(1 for o in data.observations if o.failed)
    note = f"; {failed} failed not shown" if failed else ""
    ax.set_title(
        _title(data, f"parallel coordinates, {len(points)} observations{note}"), fontsize=10
    )


def _colormap(name: str) -> Any:
    from matplotlib import colormaps

    return colormaps[name]


# ---------------------------------------------------------------- importance


def importances(data: Data, metric: experiment_pb2.Metric) -> list[tuple[str, float]]:
    """(parameter or conditional, importance) pairs, largest first; see IMPORTANCE_HELP."""
    from . import importance
    from .api import converters

    points = _successes(data, metric.name)
    if len(points) < importance.MIN_POINTS:
        raise CommandError(
            f"importance needs at least {importance.MIN_POINTS} observations of"
            f" {metric.name!r}; experiment {data.experiment.id} has {len(points)}"
        )
    assignments = [
        {k: value_of(v) for k, v in data.observations[i - 1].assignments.items()}
        for i, _, _ in points
    ]
    return importance.importances(
        converters.experiment_from_proto(data.experiment),
        assignments,  # type: ignore[arg-type]
        [v for _, v, _ in points],
    )


def _importance(fig: Any, data: Data, metric: experiment_pb2.Metric) -> None:
    ranked = importances(data, metric)
    print(
        table(
            ["PARAMETER", "IMPORTANCE"],
            [[name, f"{score:.3f}"] for name, score in ranked],
            shrink=(0,),
            right=(1,),
        )
    )
    ax = fig.subplots()
    names = [name for name, _ in reversed(ranked)]
    scores = [score for _, score in reversed(ranked)]
    ax.barh(names, scores, color="tab:blue")
    for y, score in enumerate(scores):
        ax.annotate(
            f"{score:.2f}",
            (score, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, max(scores) * 1.15 or 1)
    ax.set_xlabel("relative importance (inverse GP length scale, sums to 1)")
    ax.set_title(_title(data, f"parameter importance for {metric.name}"), fontsize=10)
    ax.grid(axis="x", alpha=0.3)


# ---------------------------------------------------------------- pareto


def _pareto(fig: Any, data: Data, front: list[observation_pb2.Observation]) -> None:
    optimized = optimized_metrics(data.experiment)
    if len(optimized) != 2:
        raise CommandError(
            f"pareto needs two optimized metrics; experiment {data.experiment.id} has"
            f" {len(optimized)}"
        )
    a, b = optimized
    good: list[tuple[float, float]] = []
    bad: list[tuple[float, float]] = []
    for obs in data.observations:
        va, vb = _value(obs, a.name), _value(obs, b.name)
        if obs.failed or va is None or vb is None:
            continue
        (good if data.feasible(obs) else bad).append((va, vb))
    if not good and not bad:
        raise CommandError(f"experiment {data.experiment.id} has no observation to plot yet")
    ax = fig.subplots()
    if good:
        ax.scatter(
            *zip(*good, strict=True),
            s=18,
            color="tab:blue",
            alpha=0.6,
            label="observation",
            gid="observations",
        )
    if bad:
        ax.scatter(
            *zip(*bad, strict=True),
            s=18,
            facecolors="none",
            edgecolors="tab:gray",
            label="violates a constraint metric",
            gid="infeasible",
        )
    points = sorted(
        (va, vb)
        for obs in front
        if (va := _value(obs, a.name)) is not None and (vb := _value(obs, b.name)) is not None
    )
    if points:
        # the front as a staircase bounding what it dominates: the level at x is the best
        # b among front points with a at least as good as x
        ax.step(
            *zip(*points, strict=True),
            where="post" if minimizes(a) else "pre",
            color="tab:orange",
            lw=1.5,
        )
        ax.scatter(
            *zip(*points, strict=True),
            s=40,
            color="tab:orange",
            zorder=3,
            label=f"Pareto front ({len(points)})",
            gid="pareto-front",
        )
    for metric, draw in ((a, ax.axvline), (b, ax.axhline)):
        if metric.HasField("threshold"):
            draw(metric.threshold, color="black", ls="--", lw=1)
    ax.set_xlabel(_direction(a))
    ax.set_ylabel(_direction(b))
    ax.set_title(_title(data, "Pareto front"), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
