"""`optserve observations export|import` against a real server: the round trip, bad
rows reported by line with nothing written, and repeated imports writing each row once."""

from __future__ import annotations

import csv
import io
import json

from google.protobuf import json_format

from optserve.v1 import service_pb2 as pb

from ..service_tests.helpers import create
from .conftest import MIXED, get, list_observations, ok, run_cli


def assignments(obs) -> dict:
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in obs.assignments.items()}


def values(obs) -> dict:
    return {
        v.name: (v.value, v.value_stddev if v.HasField("value_stddev") else None)
        for v in obs.values
    }


def content(obs) -> tuple:
    """What an import carries over: everything but ids and times."""
    return (
        assignments(obs),
        values(obs),
        obs.failed,
        json_format.MessageToDict(obs.metadata),
    )


def test_csv_export_holds_every_observation_exactly(cli_server, cli_stub, experiments):
    exp = experiments.mixed
    out = ok(run_cli(cli_server.target, "observations", "export", exp.id))
    # "-o -" is stdout as well
    assert ok(run_cli(cli_server.target, "observations", "export", exp.id, "-o", "-")) == out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [
        "id",
        "suggestion_id",
        "create_time",
        "failed",
        "lr",
        "layers",
        "optimizer",
        "accuracy",
        "seconds",
        "stddev:seconds",
        "metadata",
    ]
    stored = list_observations(cli_stub, exp.id)
    assert [r["id"] for r in rows] == [o.id for o in stored]
    for row, obs in zip(rows, stored, strict=True):
        assert row["suggestion_id"] == obs.suggestion_id
        assert row["failed"] == ("true" if obs.failed else "false")
        a = assignments(obs)
        assert float(row["lr"]) == a["lr"]  # full precision, not a rounded rendering
        assert int(row["layers"]) == a["layers"]
        assert row["optimizer"] == a["optimizer"]
        v = values(obs)
        if obs.failed:
            assert row["accuracy"] == row["seconds"] == row["stddev:seconds"] == ""
            assert row["metadata"] == ""
        else:
            assert float(row["accuracy"]) == v["accuracy"][0]
            assert (float(row["seconds"]), float(row["stddev:seconds"])) == v["seconds"]
            assert json.loads(row["metadata"]) == json_format.MessageToDict(obs.metadata)
    assert sum(r["failed"] == "true" for r in rows) == 1


def test_json_export_matches_the_api(cli_server, cli_stub, experiments, tmp_path):
    exp = experiments.mixed
    target = tmp_path / "runs.json"
    result = run_cli(
        cli_server.target, "observations", "export", exp.id, "--format", "json", "-o", str(target)
    )
    ok(result)
    assert result.stderr.strip() == f"15 observations written to {target}"
    exported = json.loads(target.read_text())
    stored = list_observations(cli_stub, exp.id)
    assert len(exported) == len(stored) == 15
    for entry, obs in zip(exported, stored, strict=True):
        assert entry["id"] == obs.id
        assert entry["assignments"] == assignments(obs)
        assert {v["name"]: (v["value"], v.get("value_stddev")) for v in entry["values"]} == values(
            obs
        )
        assert entry["failed"] == obs.failed


def test_round_trip_into_a_new_experiment(cli_server, cli_stub, experiments, tmp_path):
    source = experiments.mixed
    runs = tmp_path / "runs.csv"
    ok(run_cli(cli_server.target, "observations", "export", source.id, "-o", str(runs)))
    target = create(cli_stub, **MIXED)
    result = run_cli(cli_server.target, "observations", "import", target.id, str(runs))
    out = ok(result)
    assert out.startswith(
        f"imported 15 rows of {runs} into experiment {target.id}: 15 observations now, 0 before"
    )
    assert "importing [" in result.stderr and "15/15 (100%)" in result.stderr
    copied = list_observations(cli_stub, target.id)
    original = list_observations(cli_stub, source.id)
    assert [content(o) for o in copied] == [content(o) for o in original]
    assert all(o.suggestion_id == "" for o in copied)  # explicit assignments, no suggestions
    # the imported observations count for the optimizer: the same best point
    best = cli_stub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=target.id))
    original_best = cli_stub.GetBestAssignments(
        pb.GetBestAssignmentsRequest(experiment_id=source.id)
    )
    assert content(best.observations[0]) == content(original_best.observations[0])
    # and its export reads the same but for ids and times
    again = ok(run_cli(cli_server.target, "observations", "export", target.id))
    strip = lambda text: [r[3:] for r in csv.reader(io.StringIO(text))]  # noqa: E731
    assert strip(again) == strip(runs.read_text())


def test_a_repeated_import_writes_each_row_once(cli_server, cli_stub, tmp_path):
    target = create(cli_stub, **MIXED)
    lines = ["lr,layers,optimizer,accuracy"] + [f"0.01,{n},adam,0.{n}" for n in range(1, 7)]
    # two equal rows are two evaluations: both are written, once each
    lines.append("0.01,1,adam,0.1")
    full = tmp_path / "full.csv"
    full.write_text("\n".join(lines) + "\n")
    # an import that stopped after its first two batches of two rows ...
    part = tmp_path / "part.csv"
    part.write_text("\n".join(lines[:5]) + "\n")
    batches = ["--batch-size", "2"]
    ok(run_cli(cli_server.target, "observations", "import", target.id, str(part), *batches))
    assert get(cli_stub, target.id).progress.observation_count == 4
    # ... run again on the whole file stores the other three rows only
    out = ok(run_cli(cli_server.target, "observations", "import", target.id, str(full), *batches))
    assert "7 observations now, 4 before" in out
    assert "not written again" in out
    ok(run_cli(cli_server.target, "observations", "import", target.id, str(full), *batches))
    stored = list_observations(cli_stub, target.id)
    assert len(stored) == 7
    assert sorted(values(o)["accuracy"][0] for o in stored) == [0.1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


def test_a_refused_batch_stores_none_of_its_rows(cli_server, cli_stub, tmp_path):
    # the server refuses observations for an experiment driven by training runs
    target = create(cli_stub, **MIXED, runsOnly=True)
    rows = tmp_path / "rows.csv"
    rows.write_text("lr,layers,optimizer,accuracy\n0.01,3,adam,0.5\n0.001,4,sgd,0.25\n")
    result = run_cli(cli_server.target, "observations", "import", target.id, str(rows))
    assert result.returncode == 1
    first, second = result.stderr.splitlines()
    assert first.startswith(f"optserve: {rows}, lines 2-3: PERMISSION_DENIED: experiment")
    assert second.startswith("  those rows and the ones after them are not stored; 0 of 2")
    assert list_observations(cli_stub, target.id) == []


BAD = """lr,layers,optimizer,accuracy,seconds,failed,metadata
0.01,3,adam,0.5,12,,
0.5,3,adam,0.5,12,,
0.01,2.5,adam,0.5,,,
0.01,3,nesterov,0.5,,,
0.01,three,adam,0.5,,,
0.01,3,adam,,,,
0.01,3,adam,0.5,,,"{""note"":
""a note on two lines""}"
0.01,3,adam,0.5,,maybe,
0.01,3,adam,0.5,,true,
0.01,3,adam,0.5
0.01,3,sgd,nan,,,
0.01,3,sgd,0.7,,,{"broken
0.01,3,sgd,0.7,,,"{""broken
"""


def test_bad_rows_are_reported_by_line_and_nothing_is_written(cli_server, cli_stub, tmp_path):
    target = create(cli_stub, **MIXED)
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD)
    result = run_cli(cli_server.target, "observations", "import", target.id, str(bad))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"optserve: {bad}: nothing imported; fix these rows:"
    reported = [line.removeprefix(f"  {bad}: ") for line in lines[1:]]
    assert reported == [
        "line 3, column lr: must lie within [0.0001, 0.1]",
        "line 4, column layers: an int parameter needs an integer value",
        "line 5, column optimizer: must be one of the parameter's categorical_values",
        "line 6, column layers: 'three' is not a number",
        "line 7: required: a value for metric 'accuracy' (or failed = true)",
        "line 10, column failed: 'maybe' is not true or false",
        "line 11: a failed observation carries no values",
        "line 12: 4 cells, the header has 7",
        "line 13, column accuracy: must be a finite number",
        "line 14, column metadata: not a JSON object (Unterminated string starting at: line 1"
        " column 2 (char 1))",
        "line 15: not CSV (unexpected end of data)",
    ]
    # line 2 and the two-line record at lines 8-9 are fine, yet nothing was written
    assert get(cli_stub, target.id).progress.observation_count == 0
    assert list_observations(cli_stub, target.id) == []


def test_the_header_is_checked_against_the_experiment(cli_server, cli_stub, tmp_path):
    target = create(cli_stub, **MIXED)
    header = tmp_path / "header.csv"
    header.write_text("lr,depth,optimizer,accuracy,stddev:loss,accuracy\n0.01,3,adam,0.5,,0.5\n")
    result = run_cli(cli_server.target, "observations", "import", target.id, str(header))
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        f"  {header}: line 1, column 2 ('depth'): not a parameter or metric of the experiment,"
        " nor one of id, suggestion_id, create_time, failed, metadata",
        f"  {header}: line 1, column 5 ('stddev:loss'): 'loss' is not a metric of the experiment",
        f"  {header}: line 1, column 6 ('accuracy'): a second column of this name",
        f"  {header}: line 1: no column for parameter(s) 'layers'",
    ]
    assert get(cli_stub, target.id).progress.observation_count == 0


def test_dry_run_writes_nothing(cli_server, cli_stub, tmp_path):
    target = create(cli_stub, **MIXED)
    good = tmp_path / "good.csv"
    good.write_text("lr,layers,optimizer,accuracy\n0.01,3,adam,0.5\n0.001,4,sgd,0.25\n")
    out = ok(
        run_cli(cli_server.target, "observations", "import", target.id, str(good), "--dry-run")
    )
    assert out.strip() == f"2 rows of {good} are valid observations of experiment {target.id}"
    assert get(cli_stub, target.id).progress.observation_count == 0


def test_import_from_stdin_and_names_that_need_a_prefix(cli_server, cli_stub):
    # a parameter and a metric of the same name, and a parameter named like a reserved column
    target = create(
        cli_stub,
        name="clashing names",
        parameters=[
            {"name": "x", "type": "PARAMETER_TYPE_DOUBLE", "bounds": {"min": 0, "max": 1}},
            {"name": "failed", "type": "PARAMETER_TYPE_INT", "bounds": {"min": 0, "max": 3}},
        ],
        metrics=[{"name": "x"}],
    )
    text = "param:x,param:failed,metric:x\n0.25,2,7.5\n"
    ok(run_cli(cli_server.target, "observations", "import", target.id, "-", stdin=text))
    exported = ok(run_cli(cli_server.target, "observations", "export", target.id))
    header, row = list(csv.reader(io.StringIO(exported)))
    assert header[3:] == ["failed", "param:x", "param:failed", "metric:x"]
    assert row[3:] == ["false", "0.25", "2", "7.5"]


def test_archived_experiments_import_nothing(cli_server, cli_stub, tmp_path):
    target = create(cli_stub, **MIXED)
    ok(run_cli(cli_server.target, "experiments", "archive", target.id))
    good = tmp_path / "good.csv"
    good.write_text("lr,layers,optimizer,accuracy\n0.01,3,adam,0.5\n")
    result = run_cli(cli_server.target, "observations", "import", target.id, str(good))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"optserve: experiment {target.id} is archived: it accepts no new observations"
    )


def test_a_bad_stddev_cell_is_reported_in_its_own_column(cli_server, cli_stub):
    target = create(
        cli_stub,
        name="stddev cells",
        parameters=[{"name": "a", "type": "PARAMETER_TYPE_DOUBLE", "bounds": {"min": 0, "max": 1}}],
        metrics=[{"name": "m"}],
    )
    text = "a,m,stddev:m\n0.5,1,abc\n0.25,xyz,0.1\n"
    result = run_cli(cli_server.target, "observations", "import", target.id, "-", stdin=text)
    assert result.returncode != 0
    assert "line 2, column stddev:m:" in result.stderr and "'abc'" in result.stderr
    assert "line 3, column m:" in result.stderr and "'xyz'" in result.stderr
    assert list_observations(cli_stub, target.id) == []
