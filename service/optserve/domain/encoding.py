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


class VectorSpace:
    """Vectorized operations on encoded rows: snapping to valid points and the
    values of numeric parameters, so that thousands of candidates never become
    Python dicts."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        exp = encoder.experiment
        self._grids = {
            p.name: np.array(sorted(p.grid), dtype=np.float64) for p in exp.parameters if p.grid
        }
        self._value_index = {
            k.name: {v: i for i, v in enumerate(k.values)} for k in exp.conditionals
        }

    def canonical(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """The encoding of the nearest valid assignments: one-hots, integers and
        grid values snapped, bounds applied, inactive parameters set to INACTIVE."""
        enc = self.encoder
        exp = enc.experiment
        out = np.array(rows, dtype=np.float64, copy=True)
        n = len(out)
        chosen: dict[str, NDArray[np.int64]] = {}
        for k in exp.conditionals:
            chosen[k.name] = self._snap_one_hot(out, enc.slices[k.name])
        for p in exp.parameters:
            s = enc.slices[p.name]
            if p.type is ParameterType.CATEGORICAL:
                self._snap_one_hot(out, s)
            else:
                out[:, s.start] = self.encode_values(p, self.values(out, p))
            if p.conditions:
                active = np.ones(n, dtype=bool)
                for name, allowed in p.conditions.items():
                    index = [self._value_index[name][v] for v in allowed]
                    active &= np.isin(chosen[name], index)
                out[~active, s] = INACTIVE
        return out

    @staticmethod
    def _snap_one_hot(out: NDArray[np.float64], s: slice) -> NDArray[np.int64]:
        index = np.argmax(out[:, s], axis=1)
        out[:, s] = 0.0
        out[np.arange(len(out)), s.start + index] = 1.0
        return index

    def values(self, rows: NDArray[np.float64], p: Parameter) -> NDArray[np.float64]:
        """Values of a numeric parameter, in its own units, snapped and bounded."""
        lo, hi = self.encoder._ranges[p.name]
        x = lo + np.clip(rows[:, self.encoder.slices[p.name].start], 0.0, 1.0) * (hi - lo)
        v = np.exp(x) if p.is_log else x
        grid = self._grids.get(p.name)
        if grid is not None:
            v = grid[np.abs(v[:, None] - grid[None, :]).argmin(axis=1)]
        if p.bounds is not None:
            v = np.clip(v, p.bounds.min, p.bounds.max)
        if p.type is ParameterType.INT:
            v = np.round(v)
        return v

    def encode_values(self, p: Parameter, v: NDArray[np.float64]) -> NDArray[np.float64]:
        """The encoded column of values ``v`` of a numeric parameter."""
        lo, hi = self.encoder._ranges[p.name]
        x = np.log(v) if p.is_log else v
        return np.full(len(v), 0.5) if hi == lo else (x - lo) / (hi - lo)
