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
from optserve.optimizers import SuggestRequest, maximizer, suggest

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


def test_with_suggestions_open_every_suggestion_is_the_acquisitions_maximizer(monkeypatch):
    found: list[tuple[dict[str, float], float]] = []
    original = maximizer.maximize

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        point, refined, values = original(*args, **kwargs)
        found.append((point, float(np.max(values))))
        return point, refined, values

    monkeypatch.setattr(maximizer, "maximize", spy)
    history, pending = _history(20), _open(7)
    # consecutive sequence numbers: every one, odd or even, is chosen the same way
    for sequence in range(20, 26):
        found.clear()
        point = suggest(SuggestRequest(EXP, history, pending, 1, sequence))
        assert len(found) == 1 and found[0][0] == point[0]
        assert np.isfinite(found[0][1])
        # the same call, the same point
        assert suggest(SuggestRequest(EXP, history, pending, 1, sequence)) == point


def test_open_suggestions_leave_a_suggestion_with_nothing_open_unchanged(monkeypatch):
    history = _history(20)
    alone = [suggest(SuggestRequest(EXP, history, [], 1, seq)) for seq in (20, 21)]
    # with nothing open the compiled maximizer of log EI alone runs, never this one
    calls: list[int] = []
    original = maximizer.maximize

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(maximizer, "maximize", spy)
    assert [suggest(SuggestRequest(EXP, history, [], 1, seq)) for seq in (20, 21)] == alone
    assert not calls
    opened = [suggest(SuggestRequest(EXP, history, _open(3), 1, seq)) for seq in (20, 21)]
    assert opened != alone and len(calls) == 2
