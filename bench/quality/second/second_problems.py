"""A second problem set for the quality benchmark, held out from tuning (issue 13, item 6).

Ten single-objective problems in the shared suite's form (SigOpt experiment-create
dict, noise-free function, known optimum; ``Problem`` of
../shared/bench/quality/problems.py), designed apart from the shared suite so that
a change tuned to that suite shows whether it carries over. None of them is a
shared-suite function in another guise.

| name | parameters | tests | optimum |
|---|---|---|---|
| stybtang_rot24 | 24 double | dimension: rotated, weighted Styblinski-Tang | by construction |
| int_heavy | 8 int + 1 double | coupled integer lattice, period-3 ripple | 0, construction |
| hetero_noisy | 4 double | noise sd 0.02 to 0.32 along x1, a noisy decoy | L-BFGS-B |
| narrow_lc | 5 double, 3 constraints | slab 0.95 <= sum x <= 1.05: 0.14 % of the box | SLSQP |
| optimizer_conditional | conditional, 3+2 | branches with different optima | 0, construction |
| mixed_cat | 3 categorical, 3 double, 1 int | categories move the best doubles | 0, construction |
| cat_shift5 | 2 categorical, 3 double | one moves the best doubles, one idle | 0, construction |
| flags | 3 binary categorical, 2 double | one moves a Rosenbrock valley | 0, construction |
| int_linear | 1 wide int, 2 double | the int's effect is in plain units | 0, construction |
| forgot_log | 3 positive double, linear | effects in decades, declared linear | 0, construction |

Every constant is fixed here (random rotations and targets come from fixed
seeds). ``python second_problems.py --verify`` recomputes the two numerical optima and
checks by random sampling that no point beats any stored optimum.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[4] / "shared" / "bench" / "quality"
if str(SHARED) not in sys.path:
    sys.path.insert(0, str(SHARED))
from problems import Problem  # noqa: E402  (../shared/bench/quality/problems.py)

Assignments = dict[str, Any]


def _experiment(name, parameters, objective="minimize", **extra):
    exp = {
        "name": name,
        "parameters": parameters,
        "metrics": [{"name": "value", "objective": objective}],
        "observation_budget": 80,
    }
    exp.update(extra)
    return exp


def _double(name, lo, hi, **extra):
    return {"name": name, "type": "double", "bounds": {"min": lo, "max": hi}, **extra}


def _int(name, lo, hi, **extra):
    return {"name": name, "type": "int", "bounds": {"min": lo, "max": hi}, **extra}


# ---------------------------------------------------------------- 24-D rotated Styblinski-Tang

ST_D = 24
ST_ZSTAR = -2.903534027771178  # argmin of t^4 - 16 t^2 + 5 t (the root of 4t^3 - 32t + 5)
_st_rng = np.random.default_rng(1301)
ST_R = np.linalg.qr(_st_rng.standard_normal((ST_D, ST_D)))[0]  # a fixed rotation
ST_XSTAR = _st_rng.uniform(-2.5, 2.5, ST_D)  # the optimum, inside the box [-5, 5]^24
ST_W = 10.0 ** (-np.arange(ST_D) / (ST_D - 1))  # rotated directions' weights, 1 down to 0.1


def _st(t):
    return 0.5 * (t**4 - 16 * t**2 + 5 * t)


def stybtang_fn(a: Assignments) -> float:
    """Minimise sum_i w_i st(z_i), z = R (x - x*) + z*: each term is minimised at
    z_i = z*, so the minimum over R^24 (and the box) is at x = x*. Rotated so that
    no coordinate is separable; weights so that some directions matter 10x less."""
    x = np.array([float(a[f"x{i + 1}"]) for i in range(ST_D)])
    z = ST_R @ (x - ST_XSTAR) + ST_ZSTAR
    return float(np.sum(ST_W * _st(z)))


ST_OPT = float(np.sum(ST_W * _st(np.full(ST_D, ST_ZSTAR))))


# ---------------------------------------------------------------- integer-heavy

INT_SPECS = [  # name, lo, hi, target
    ("n1", 0, 20, 7),
    ("n2", 1, 64, 37),
    ("n3", -10, 10, -4),
    ("n4", 0, 5, 2),
    ("n5", 2, 40, 23),
    ("n6", 0, 100, 61),
    ("n7", 1, 8, 5),
    ("n8", -3, 3, 1),
]
_int_rng = np.random.default_rng(1302)
_q = np.linalg.qr(_int_rng.standard_normal((8, 8)))[0]
INT_A = _q @ np.diag(np.geomspace(2.0, 20.0, 8)) @ _q.T  # positive definite coupling


def int_heavy_fn(a: Assignments) -> float:
    """Minimise s^T A s + 0.3 sum sin^2(pi d_i / 3) + 4 (u - 0.3 - 0.2 s_1)^2 with
    d = n - target, s = d / range: a coupled quadratic bowl on the integer lattice,
    rippled with period 3 (local minima three steps apart), and a double u whose
    best value moves with n1. Every term is >= 0 and all are 0 only at the
    targets and u = 0.3."""
    d = np.array([int(a[n]) - t for n, _, _, t in INT_SPECS], dtype=float)
    s = d / np.array([hi - lo for _, lo, hi, _ in INT_SPECS], dtype=float)
    u = float(a["u"])
    ripple = 0.3 * float(np.sum(np.sin(math.pi * d / 3.0) ** 2))
    return float(s @ INT_A @ s + ripple + 4.0 * (u - 0.3 - 0.2 * s[0]) ** 2)


# ---------------------------------------------------------------- heteroscedastic noise

HN_BUMPS = [  # height, centre, width
    (1.00, (0.25, 0.70, 0.40, 0.60), 0.15),
    (0.85, (0.85, 0.20, 0.70, 0.30), 0.20),  # the decoy, where the noise is large
    (0.50, (0.50, 0.50, 0.10, 0.90), 0.25),
    (0.40, (0.10, 0.10, 0.90, 0.20), 0.20),
]


def hetero_x(x: np.ndarray) -> float:
    return float(
        sum(h * math.exp(-np.sum((x - np.array(c)) ** 2) / (2 * w * w)) for h, c, w in HN_BUMPS)
    )


def hetero_sd(x1: float) -> float:
    """Noise sd grows with x1: 0.02 at x1 = 0 to 0.32 at x1 = 1 (0.04 at the
    optimum, 0.24 at the decoy)."""
    return 0.02 + 0.3 * x1 * x1


def hetero_fn(a: Assignments) -> float:
    """Maximise a sum of four Gaussian bumps in [0,1]^4 (noise-free value)."""
    return hetero_x(np.array([float(a[f"x{i + 1}"]) for i in range(4)]))


HN_OPT = 1.054615676173488  # recomputed by --verify (multistart L-BFGS-B)


@dataclass
class HeteroNoisyProblem(Problem):
    """A Problem whose observation noise depends on the point."""

    def evaluate(self, assignments: Assignments, rng: np.random.Generator | None = None):
        v = self.fn(assignments)
        rng = rng if rng is not None else np.random.default_rng()
        return float(v + hetero_sd(float(assignments["x1"])) * rng.standard_normal())


# ---------------------------------------------------------------- narrow linear-constrained region

NL_M = np.array([0.6, 0.5, 0.4, 0.3, 0.2])  # unconstrained minimiser (sum 2.0: infeasible)
NL_K = np.array([1.0, 2.0, 3.0, 1.5, 2.5])
NL_CONSTRAINTS = [
    {
        "type": "less_than",
        "threshold": 1.05,
        "terms": [{"name": f"x{i}", "weight": 1.0} for i in range(1, 6)],
    },
    {
        "type": "greater_than",
        "threshold": 0.95,
        "terms": [{"name": f"x{i}", "weight": 1.0} for i in range(1, 6)],
    },
    {
        "type": "greater_than",
        "threshold": 0.1,
        "terms": [{"name": "x1", "weight": 1.0}, {"name": "x2", "weight": -1.0}],
    },
]


def narrow_x(x: np.ndarray) -> float:
    return float(np.sum(NL_K * (x - NL_M) ** 2) + 0.1 * math.sin(5 * x[0] + 3 * x[1]))


def narrow_fn(a: Assignments) -> float:
    """Minimise a weighted quadratic plus a ripple whose unconstrained minimum
    (sum x = 2) lies outside the slab 0.95 <= sum x <= 1.05, also cut by
    x1 - x2 >= 0.1: the optimum is on the slab's upper face."""
    return narrow_x(np.array([float(a[f"x{i + 1}"]) for i in range(5)]))


NL_OPT = 0.3523931497445494  # recomputed by --verify (multistart SLSQP)


def narrow_feasible(x: np.ndarray) -> np.ndarray:
    s = x.sum(axis=-1)
    return (s <= 1.05) & (s >= 0.95) & (x[..., 0] - x[..., 1] >= 0.1)


# ---------------------------------------------------------------- conditional (optimizer choice)

OC_BRANCH = {  # offset, best log10 learning rate at batch 2^7
    "adam": (0.0, -3.3),
    "sgd": (0.05, -1.7),
    "rmsprop": (0.10, -3.8),
}


def optimizer_conditional_fn(a: Assignments) -> float:
    """Minimise a synthetic validation loss over the choice of training
    optimizer: shared log10 learning rate, log2 batch size (int) and log10 weight
    decay; sgd has momentum, adam beta1 and log10 eps, rmsprop rho and momentum.
    The best learning rate depends on the branch and grows with the batch size.
    0 at adam, batch 2^7, lr 10^-3.3, wd 10^-4.5, beta1 0.9, eps 10^-8; the best
    sgd loss is 0.05, rmsprop 0.10."""
    branch = str(a["optimizer"])
    off, lr0 = OC_BRANCH[branch]
    b = int(a["batch_log2"])
    lr_opt = lr0 + 0.15 * (b - 7)
    loss = off + 0.3 * (float(a["lr"]) - lr_opt) ** 2 + 0.02 * (b - 7) ** 2
    loss += 0.1 * (float(a["wd"]) + 4.5) ** 2
    if branch == "sgd":
        loss += 0.5 * (float(a["momentum"]) - 0.9) ** 2
    elif branch == "adam":
        loss += 0.8 * (float(a["beta1"]) - 0.9) ** 2 + 0.01 * (float(a["eps"]) + 8.0) ** 2
    else:
        loss += 0.5 * (float(a["rho"]) - 0.9) ** 2 + 0.3 * (float(a["momentum_r"]) - 0.5) ** 2
    return float(loss)


def _optimizer_conditional_experiment():
    on = lambda v: {"conditions": {"optimizer": [v]}}  # noqa: E731
    params = [
        _double("lr", -6.0, -1.0),
        _int("batch_log2", 4, 10),
        _double("wd", -7.0, -2.0),
        _double("momentum", 0.0, 0.99, **on("sgd")),
        _double("beta1", 0.5, 0.999, **on("adam")),
        _double("eps", -10.0, -6.0, **on("adam")),
        _double("rho", 0.5, 0.99, **on("rmsprop")),
        _double("momentum_r", 0.0, 0.9, **on("rmsprop")),
    ]
    return _experiment(
        "optimizer-conditional",
        params,
        conditionals=[{"name": "optimizer", "values": ["sgd", "adam", "rmsprop"]}],
    )


# ---------------------------------------------------------------- mixed categorical

MC_ACT = {"relu": (0.15, 0.10), "tanh": (0.30, -0.10), "gelu": (0.0, 0.0), "elu": (0.10, 0.20)}
MC_INIT = {"he": (0.0, 0.0), "xavier": (0.08, -0.15), "normal": (0.25, 0.10)}
MC_NORM = {"none": (0.20, 0.0), "batch": (0.05, 0.15), "layer": (0.0, 0.0)}


def mixed_cat_fn(a: Assignments) -> float:
    """Minimise. Three categoricals each add an offset and shift the best point
    of the doubles (x, y); relu without normalisation costs 0.2 more, tanh with
    batch norm 0.1 less than the sum of offsets (still >= 0.25). z and the int
    width_log2 interact. 0 at gelu, he, layer, x = 0.35, y = 0.6, z = 0.5,
    width_log2 = 6."""
    act, init, norm = str(a["activation"]), str(a["init"]), str(a["norm"])
    (oa, sa), (oi, si), (on, sn) = MC_ACT[act], MC_INIT[init], MC_NORM[norm]
    off = oa + oi + on
    if act == "relu" and norm == "none":
        off += 0.2
    if act == "tanh" and norm == "batch":
        off -= 0.1
    cx, cy = 0.35 + sa + sn, 0.6 + si
    x, y, z = float(a["x"]), float(a["y"]), float(a["z"])
    w = int(a["width_log2"])
    return float(
        off
        + 3.0 * (x - cx) ** 2
        + 2.0 * (y - cy) ** 2
        + 2.0 * (z - 0.5 - 0.05 * (w - 6)) ** 2
        + 0.05 * (w - 6) ** 2
    )


def _mixed_cat_experiment():
    return _experiment(
        "mixed-categorical",
        [
            {"name": "activation", "type": "categorical", "categorical_values": list(MC_ACT)},
            {"name": "init", "type": "categorical", "categorical_values": list(MC_INIT)},
            {"name": "norm", "type": "categorical", "categorical_values": list(MC_NORM)},
            _double("x", 0.0, 1.0),
            _double("y", 0.0, 1.0),
            _double("z", 0.0, 1.0),
            _int("width_log2", 3, 10),
        ],
    )


# ---------------------------------------------------------------- categorical shift

CS_KIND = {  # value -> (best u, best v, offset)
    "a": (0.3, 0.6, 0.0),
    "b": (0.7, 0.2, 0.2),
    "c": (0.5, 0.8, 0.5),
    "d": (0.1, 0.4, 0.8),
    "e": (0.9, 0.5, 1.2),
}


def cat_shift5_fn(a: Assignments) -> float:
    """Minimise. The 5-valued ``kind`` adds an offset and moves the best (u, v);
    the 3-valued ``idle`` does nothing. 0 at kind = a, u = 0.3, v = 0.6, w = 0.5."""
    cu, cv, off = CS_KIND[str(a["kind"])]
    du, dv, dw = float(a["u"]) - cu, float(a["v"]) - cv, float(a["w"]) - 0.5
    # 4 du^2 + 2 dv^2 + du dv / 2 is positive definite
    return float(off + 4.0 * du**2 + 2.0 * dv**2 + 0.5 * du * dv + 0.5 * dw**2)


def _cat_shift5_experiment():
    return _experiment(
        "categorical-shift",
        [
            {"name": "kind", "type": "categorical", "categorical_values": list(CS_KIND)},
            {"name": "idle", "type": "categorical", "categorical_values": ["p", "q", "r"]},
            _double("u", 0.0, 1.0),
            _double("v", 0.0, 1.0),
            _double("w", -2.0, 2.0),
        ],
    )


# ---------------------------------------------------------------- flags


def flags_fn(a: Assignments) -> float:
    """Minimise. f1 moves a Rosenbrock valley in (x, y) and costs 0.4 off; f2
    costs 0.3 on, f3 0.15 off. 0 at f1 = on, f2 = off, f3 = on, x = 1.5, y = 1."""
    x, y = float(a["x"]), float(a["y"])
    on = {f: a[f] == "on" for f in ("f1", "f2", "f3")}
    t = x - (0.5 if on["f1"] else -0.5)
    offset = (0.0 if on["f1"] else 0.4) + (0.3 if on["f2"] else 0.0) + (0.0 if on["f3"] else 0.15)
    return float((1.0 - t) ** 2 + 5.0 * (y - t**2) ** 2 + offset)


def _flags_experiment():
    flag = lambda name: {"name": name, "type": "categorical", "categorical_values": ["off", "on"]}  # noqa: E731
    return _experiment(
        "flags",
        [flag("f1"), flag("f2"), flag("f3"), _double("x", -2.0, 2.0), _double("y", -1.0, 3.0)],
    )


# ---------------------------------------------------------------- encodings


def int_linear_fn(a: Assignments) -> float:
    """Minimise. An int in [1, 200] whose effect is quadratic in plain units
    (best 150) and moves the best x. 0 at n = 150, x = 0.3, y = 0.7."""
    n, x, y = int(a["n"]), float(a["x"]), float(a["y"])
    return float(
        ((n - 150) / 40.0) ** 2 + 3 * (x - 0.3 - 0.001 * (n - 150)) ** 2 + 2 * (y - 0.7) ** 2
    )


def forgot_log_fn(a: Assignments) -> float:
    """Minimise. A learning rate and a weight decay whose effects are in decades,
    declared on a linear scale, and a momentum. 0 at lr = 10^-3.5, wd = 10^-2,
    m = 0.9."""
    lr, wd, m = float(a["lr"]), float(a["wd"]), float(a["m"])
    return float(
        (math.log10(lr) + 3.5) ** 2 / 2 + (math.log10(wd) + 2.0) ** 2 / 4 + 2 * (m - 0.9) ** 2
    )


# ---------------------------------------------------------------- suite


def build_suite() -> dict[str, Problem]:
    P: dict[str, Problem] = {}
    P["stybtang_rot24"] = Problem(
        "stybtang_rot24",
        _experiment("stybtang-rot24", [_double(f"x{i + 1}", -5.0, 5.0) for i in range(ST_D)]),
        stybtang_fn,
        ST_OPT,
        tags=("high-dimensional",),
    )
    P["int_heavy"] = Problem(
        "int_heavy",
        _experiment(
            "int-heavy",
            [_int(n, lo, hi) for n, lo, hi, _ in INT_SPECS] + [_double("u", 0.0, 1.0)],
        ),
        int_heavy_fn,
        0.0,
        tags=("integer",),
    )
    P["hetero_noisy"] = HeteroNoisyProblem(
        "hetero_noisy",
        _experiment(
            "hetero-noisy",
            [_double(f"x{i + 1}", 0.0, 1.0) for i in range(4)],
            objective="maximize",
        ),
        hetero_fn,
        HN_OPT,
        tags=("noisy",),
        notes="noise sd 0.02 + 0.3 x1^2; regret scored on the noise-free value of the "
        "incumbent chosen by noisy observations (the harness's rule)",
    )
    P["narrow_lc"] = Problem(
        "narrow_lc",
        _experiment(
            "narrow-linear-constraints",
            [_double(f"x{i + 1}", 0.0, 1.0) for i in range(5)],
            linear_constraints=NL_CONSTRAINTS,
        ),
        narrow_fn,
        NL_OPT,
        tags=("constrained",),
    )
    P["optimizer_conditional"] = Problem(
        "optimizer_conditional",
        _optimizer_conditional_experiment(),
        optimizer_conditional_fn,
        0.0,
        tags=("conditional",),
    )
    P["mixed_cat"] = Problem(
        "mixed_cat", _mixed_cat_experiment(), mixed_cat_fn, 0.0, tags=("mixed",)
    )
    P["cat_shift5"] = Problem(
        "cat_shift5", _cat_shift5_experiment(), cat_shift5_fn, 0.0, tags=("mixed",)
    )
    P["flags"] = Problem("flags", _flags_experiment(), flags_fn, 0.0, tags=("mixed",))
    P["int_linear"] = Problem(
        "int_linear",
        _experiment(
            "int-linear", [_int("n", 1, 200), _double("x", 0.0, 1.0), _double("y", 0.0, 1.0)]
        ),
        int_linear_fn,
        0.0,
        tags=("integer",),
    )
    P["forgot_log"] = Problem(
        "forgot_log",
        _experiment(
            "forgot-log",
            [_double("lr", 1e-5, 1e-1), _double("wd", 1e-4, 1.0), _double("m", 0.5, 0.999)],
        ),
        forgot_log_fn,
        0.0,
        tags=("scale",),
    )
    return P


SUITE = build_suite()


# ---------------------------------------------------------------- verification


def _verify_hetero(seed: int = 0, n_starts: int = 200):
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    starts = [np.array(c) for _, c, _ in HN_BUMPS] + list(rng.random((n_starts, 4)))
    best = -np.inf, None
    for x0 in starts:
        r = minimize(
            lambda x: -hetero_x(x),
            x0,
            method="L-BFGS-B",
            bounds=[(0, 1)] * 4,
            options={"ftol": 1e-15, "gtol": 1e-12},
        )
        if -r.fun > best[0]:
            best = -r.fun, r.x
    return best


def _verify_narrow(seed: int = 0, n_starts: int = 300):
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    cons = [
        {"type": "ineq", "fun": lambda x: 1.05 - x.sum()},
        {"type": "ineq", "fun": lambda x: x.sum() - 0.95},
        {"type": "ineq", "fun": lambda x: x[0] - x[1] - 0.1},
    ]
    best = np.inf, None
    for _ in range(n_starts):
        x0 = rng.dirichlet(np.ones(5))  # sum 1: on the slab
        r = minimize(
            narrow_x,
            x0,
            method="SLSQP",
            bounds=[(0, 1)] * 5,
            constraints=cons,
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        if r.success and min(c["fun"](r.x) for c in cons) > -1e-9 and r.fun < best[0]:
            best = float(r.fun), r.x
    return best


def _random_assignments(exp: dict, rng) -> Assignments:
    a: Assignments = {}
    for c in exp.get("conditionals") or []:
        a[c["name"]] = str(rng.choice(c["values"]))
    for p in exp["parameters"]:
        cond = p.get("conditions") or {}
        if any(a.get(k) not in v for k, v in cond.items()):
            continue
        if p["type"] == "categorical":
            a[p["name"]] = str(rng.choice(p["categorical_values"]))
        elif p["type"] == "int":
            a[p["name"]] = int(rng.integers(p["bounds"]["min"], p["bounds"]["max"] + 1))
        else:
            a[p["name"]] = float(rng.uniform(p["bounds"]["min"], p["bounds"]["max"]))
    return a


def verify(n_random: int = 20000) -> None:
    v, x = _verify_hetero()
    print(f"hetero_noisy: optimum {v:.10f} at {np.round(x, 4)}; stored {HN_OPT:.10f}")
    assert abs(v - HN_OPT) < 1e-8, "HN_OPT out of date"
    v, x = _verify_narrow()
    print(
        f"narrow_lc: optimum {v:.10f} at {np.round(x, 4)} (sum {x.sum():.4f}); stored {NL_OPT:.10f}"
    )
    assert abs(v - NL_OPT) < 1e-8, "NL_OPT out of date"
    rng = np.random.default_rng(7)
    box = rng.random((2_000_000, 5))
    print(f"narrow_lc: feasible fraction of the box {narrow_feasible(box).mean():.5f}")
    # by-construction optima: the stated argmin attains them, and no sample beats them
    at = {f"x{i + 1}": float(ST_XSTAR[i]) for i in range(ST_D)}
    assert abs(stybtang_fn(at) - ST_OPT) < 1e-9
    assert int_heavy_fn({**{n: t for n, _, _, t in INT_SPECS}, "u": 0.3}) == 0.0
    assert (
        optimizer_conditional_fn(
            {
                "optimizer": "adam",
                "lr": -3.3,
                "batch_log2": 7,
                "wd": -4.5,
                "beta1": 0.9,
                "eps": -8.0,
            }
        )
        == 0.0
    )
    assert (
        mixed_cat_fn(
            {
                "activation": "gelu",
                "init": "he",
                "norm": "layer",
                "x": 0.35,
                "y": 0.6,
                "z": 0.5,
                "width_log2": 6,
            }
        )
        == 0.0
    )
    for p in SUITE.values():
        sign = 1.0 if p.objective == "minimize" else -1.0
        vals = []
        for _ in range(n_random):
            a = _random_assignments(p.experiment, rng)
            if p.name == "narrow_lc" and not narrow_feasible(
                np.array([a[f"x{i + 1}"] for i in range(5)])
            ):
                continue
            vals.append(p.fn(a))
        best = min(sign * v for v in vals)
        assert best >= sign * p.optimum - 1e-12, p.name
        print(
            f"{p.name:24s} optimum {p.optimum:.6f}; best of {len(vals)} random points "
            f"{sign * best:.6f}"
        )
    print("ok")


if __name__ == "__main__":
    if "--verify" in sys.argv:
        verify()
    else:
        for p in SUITE.values():
            print(
                f"{p.name:24s} dims={len(p.experiment['parameters']):2d} "
                f"opt={p.optimum:.6f} {p.objective}"
            )
