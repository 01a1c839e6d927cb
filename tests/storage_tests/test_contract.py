"""The Storage contract, run against every backend (SQLite today)."""

from __future__ import annotations

import threading

import pytest

from optserve.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from optserve.domain.model import (
    Bounds,
    Experiment,
    ExperimentState,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    ParameterType,
    SuggestionState,
)
from optserve.storage import SqliteStorage, Storage


@pytest.fixture(params=["sqlite"])
def storage(request, tmp_path) -> Storage:
    backend = SqliteStorage(tmp_path / "contract.db")
    yield backend
    backend.close()


def _experiment(name: str = "e", project: str = "") -> Experiment:
    return Experiment(
        id="",
        name=name,
        project=project,
        parameters=[Parameter("x", ParameterType.DOUBLE, Bounds(0, 1))],
        metrics=[Metric("v")],
        seed=11,
        metadata={"k": [1, "two"]},
    )


def _observe(
    storage: Storage, exp_id: str, suggestion_id: str | None, value: float = 1.0
) -> Observation:
    return storage.create_observation(
        Observation("", exp_id, suggestion_id, {"x": 0.5}, [MetricValue("v", value, 0.1)])
    )


def test_experiment_round_trip_and_progress(storage):
    exp = storage.create_experiment(_experiment())
    again = storage.get_experiment(exp.id)
    assert again.name == "e" and again.seed == 11 and again.metadata == {"k": [1, "two"]}
    assert again.parameters == exp.parameters and again.metrics == exp.metrics
    s1, s2 = storage.create_suggestions(exp.id, [{"x": 0.1}, {"x": 0.2}], {"m": 1})
    assert (s1.sequence, s2.sequence) == (0, 1) and s1.metadata == {"m": 1}
    _observe(storage, exp.id, s1.id)
    storage.create_observation(Observation("", exp.id, None, {"x": 0.3}, [], failed=True))
    progress = storage.get_experiment(exp.id).progress
    assert (
        progress.observation_count,
        progress.failed_observation_count,
        progress.open_suggestion_count,
    ) == (2, 1, 1)


def test_unknown_ids_raise_not_found(storage):
    exp = storage.create_experiment(_experiment())
    with pytest.raises(NotFound):
        storage.get_experiment("999")
    with pytest.raises(NotFound):
        storage.get_experiment("abc")
    with pytest.raises(NotFound):
        storage.get_suggestion(exp.id, "5")
    with pytest.raises(NotFound):
        storage.get_observation(exp.id, "5")
    with pytest.raises(NotFound):
        storage.create_suggestions("999", [{"x": 0.1}], {})


def test_observation_closes_its_suggestion_once(storage):
    exp = storage.create_experiment(_experiment())
    (s,) = storage.create_suggestions(exp.id, [{"x": 0.1}], {})
    _observe(storage, exp.id, s.id)
    assert storage.get_suggestion(exp.id, s.id).state is SuggestionState.CLOSED
    with pytest.raises(FailedPrecondition):
        _observe(storage, exp.id, s.id)
    with pytest.raises(FailedPrecondition):
        storage.delete_suggestion(exp.id, s.id)
    assert storage.get_experiment(exp.id).progress.observation_count == 1


def test_racing_observations_close_a_suggestion_exactly_once(storage):
    exp = storage.create_experiment(_experiment())
    (s,) = storage.create_suggestions(exp.id, [{"x": 0.1}], {})
    wins, losses = [], []

    def race() -> None:
        try:
            wins.append(_observe(storage, exp.id, s.id))
        except FailedPrecondition:
            losses.append(1)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7


def test_paging_and_filters(storage):
    made = [
        storage.create_experiment(_experiment(f"e{i}", project="p" if i % 2 else "q")).id
        for i in range(7)
    ]
    seen, token = [], ""
    while True:
        page = storage.list_experiments("p", None, 2, token)
        seen += [e.id for e in page.items]
        token = page.next_token
        if not token:
            break
    assert seen == [i for k, i in enumerate(made) if k % 2][::-1]
    archived = storage.get_experiment(made[0])
    archived.state = ExperimentState.ARCHIVED
    storage.update_experiment(archived)
    assert [e.id for e in storage.list_experiments("", ExperimentState.ARCHIVED, 10, "").items] == [
        made[0]
    ]
    with pytest.raises(InvalidArgument):
        storage.list_experiments("", None, 2, "not-a-token")


def test_delete_cascades_and_sequence_survives_deleted_suggestions(storage):
    exp = storage.create_experiment(_experiment())
    a, b = storage.create_suggestions(exp.id, [{"x": 0.1}, {"x": 0.2}], {})
    storage.delete_suggestion(exp.id, a.id)
    assert storage.count_suggestions(exp.id) == 2
    (c,) = storage.create_suggestions(exp.id, [{"x": 0.3}], {})
    assert c.sequence == 2
    o = _observe(storage, exp.id, b.id)
    storage.delete_observation(exp.id, o.id)
    assert storage.get_suggestion(exp.id, b.id).state is SuggestionState.CLOSED
    storage.delete_experiment(exp.id)
    with pytest.raises(NotFound):
        storage.get_suggestion(exp.id, c.id)
    with pytest.raises(NotFound):
        storage.load_history(exp.id)


def test_history_is_ordered_and_complete(storage):
    exp = storage.create_experiment(_experiment())
    suggestions = storage.create_suggestions(exp.id, [{"x": i / 10} for i in range(5)], {})
    for k, s in enumerate(suggestions[:3]):
        _observe(storage, exp.id, s.id, value=float(k))
    observations, pending = storage.load_history(exp.id)
    assert [o.value_of("v") for o in observations] == [0.0, 1.0, 2.0]
    assert observations[0].values[0].stddev == 0.1
    assert [s.id for s in pending] == [s.id for s in suggestions[3:]]


def test_data_survives_reopening(tmp_path):
    path = tmp_path / "reopen.db"
    first = SqliteStorage(path)
    exp = first.create_experiment(_experiment())
    (s,) = first.create_suggestions(exp.id, [{"x": 0.4}], {})
    _observe(first, exp.id, s.id)
    first.close()
    second = SqliteStorage(path)
    observations, pending = second.load_history(exp.id)
    assert len(observations) == 1 and not pending and observations[0].assignments == {"x": 0.5}
    second.close()
