"""Encoding of assignments into the unit cube the models work in, and back.

Columns, in parameter order then conditional order:
  * double / int: one column, (v - min) / (max - min), in log space when LOG;
  * categorical: one-hot, so that a kernel treats categories as unordered;
  * conditional: one-hot of its value.
An inactive parameter's columns hold a constant (0.5), so that two points
sharing the same active parameters are compared on those only.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .model import Assignments, Experiment, Parameter, ParameterType

INACTIVE = 0.5


def _numeric_range(p: Parameter) -> tuple[float, float]:
    if p.bounds is not None:
        lo, hi = p.bounds.min, p.bounds.max
    else:
        lo, hi = min(p.grid), max(p.grid)
    if p.is_log:
        return math.log(lo), math.log(hi)
    return lo, hi


class Encoder:
    """Maps assignments of one experiment to rows of [0, 1]^D and back."""

    def __init__(self, exp: Experiment) -> None:
        self.experiment = exp
        self.slices: dict[str, slice] = {}
        col = 0
        for p in exp.parameters:
            width = len(p.categorical_values) if p.type is ParameterType.CATEGORICAL else 1
            self.slices[p.name] = slice(col, col + width)
            col += width
        for k in exp.conditionals:
            self.slices[k.name] = slice(col, col + len(k.values))
            col += len(k.values)
        self.dim = col
        self._ranges = {p.name: _numeric_range(p) for p in exp.parameters if p.is_numeric}
        # columns holding a single numeric value (the ones a local search may move freely)
        self.numeric_columns = np.array(
            [self.slices[p.name].start for p in exp.parameters if p.is_numeric], dtype=np.int64
        )

    def encode(self, assignments: list[Assignments]) -> NDArray[np.float64]:
        """Rows of the unit cube, shape (len(assignments), D)."""
        out = np.full((len(assignments), self.dim), INACTIVE)
        exp = self.experiment
        for r, a in enumerate(assignments):
            for p in exp.parameters:
                s = self.slices[p.name]
                if p.name not in a:
                    continue
                v = a[p.name]
                if p.type is ParameterType.CATEGORICAL:
                    out[r, s] = 0.0
                    if v in p.categorical_values:
                        out[r, s.start + p.categorical_values.index(str(v))] = 1.0
                else:
                    lo, hi = self._ranges[p.name]
                    x = math.log(float(v)) if p.is_log else float(v)
                    out[r, s.start] = 0.5 if hi == lo else (x - lo) / (hi - lo)
            for k in exp.conditionals:
                s = self.slices[k.name]
                out[r, s] = 0.0
                if a.get(k.name) in k.values:
                    out[r, s.start + k.values.index(str(a[k.name]))] = 1.0
        return out

    def decode(self, rows: NDArray[np.float64]) -> list[Assignments]:
        """Nearest valid assignments (ints rounded, grids snapped, argmax of one-hots)."""
        exp = self.experiment
        out: list[Assignments] = []
        for row in np.atleast_2d(rows):
            a: Assignments = {}
            for k in exp.conditionals:
                a[k.name] = k.values[int(np.argmax(row[self.slices[k.name]]))]
            for p in exp.parameters:
                if not p.is_active(a):
                    continue
                s = self.slices[p.name]
                if p.type is ParameterType.CATEGORICAL:
                    a[p.name] = p.categorical_values[int(np.argmax(row[s]))]
                    continue
                lo, hi = self._ranges[p.name]
                x = lo + float(np.clip(row[s.start], 0.0, 1.0)) * (hi - lo)
                v = math.exp(x) if p.is_log else x
                if p.grid:
                    v = min(p.grid, key=lambda g: abs(g - v))
                if p.bounds is not None:
                    v = min(max(v, p.bounds.min), p.bounds.max)
                a[p.name] = round(v) if p.type is ParameterType.INT else float(v)
            out.append(a)
        return out
