"""Suggestions made while other workers' suggestions are open: each one
maximizes expected improvement under the believing GP with the local penalty
of the open points (no turns drawn from the posterior instead)."""

from __future__ import annotations

import numpy as np

from optserve.domain.encoding import Encoder
from optserve.domain.model import (
    MetricValue,
    Observation,
    Suggestion,
)
from optserve.optimizers import SuggestRequest, compiled_maximizer, suggest

from .spaces import unit_square

EXP = unit_square("open")
ENCODER = Encoder(EXP)


def _history(n: int) -> list[Observation]:
    rng = np.random.default_rng(4)
    out = []
    for i in range(n):
        a = {"a": float(rng.random()), "b": float(rng.random())}
        value = float(np.sin(5 * a["a"]) + np.cos(3 * a["b"]))
        out.append(Observation(str(i), EXP.id, None, a, [MetricValue("v", value)]))
    return out


def _open(count: int) -> list[Suggestion]:
    rng = np.random.default_rng(5)
    return [
        Suggestion(f"p{i}", EXP.id, {"a": float(rng.random()), "b": float(rng.random())})
        for i in range(count)
    ]


def _spy(monkeypatch) -> list[tuple[dict[str, float], float, bool]]:  # type: ignore[no-untyped-def]
    """Records each compiled maximization: its point, its value, whether it was penalized."""
    found: list[tuple[dict[str, float], float, bool]] = []
    original = compiled_maximizer.maximize_log_ei

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = original(*args, **kwargs)
        penalty = args[5] if len(args) > 5 else kwargs.get("penalty")
        if out is not None:
            found.append((out[0], out[2], penalty is not None))
        return out

    monkeypatch.setattr(compiled_maximizer, "maximize_log_ei", spy)
    return found


def test_with_suggestions_open_every_suggestion_is_the_acquisitions_maximizer(monkeypatch):
    found = _spy(monkeypatch)
    history, pending = _history(20), _open(7)
    # consecutive sequence numbers: every one, odd or even, is chosen the same way
    for sequence in range(20, 26):
        found.clear()
        point = suggest(SuggestRequest(EXP, history, pending, 1, sequence))
        # the compiled maximizer of log EI over the fantasies plus the local penalty
        assert len(found) == 1 and found[0][0] == point[0] and found[0][2]
        assert np.isfinite(found[0][1])
        # the same call, the same point
        assert suggest(SuggestRequest(EXP, history, pending, 1, sequence)) == point


def test_open_suggestions_leave_a_suggestion_with_nothing_open_unchanged(monkeypatch):
    history = _history(20)
    alone = [suggest(SuggestRequest(EXP, history, [], 1, seq)) for seq in (20, 21)]
    found = _spy(monkeypatch)
    assert [suggest(SuggestRequest(EXP, history, [], 1, seq)) for seq in (20, 21)] == alone
    # with nothing open no penalty
    assert [penalized for _, _, penalized in found] == [False, False]
    found.clear()
    opened = [suggest(SuggestRequest(EXP, history, _open(3), 1, seq)) for seq in (20, 21)]
    assert opened != alone and [penalized for _, _, penalized in found] == [True, True]
