"""`optserve --help` and `optserve experiments ...` against a real server."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from google.protobuf import field_mask_pb2

from optserve.cli_client import cell_text
from optserve.v1 import experiment_pb2
from optserve.v1 import service_pb2 as pb

from ..conftest import start_server
from ..service_tests.helpers import create
from .conftest import MIXED, get, ok, run_cli

LEAVES = [
    ["serve"],
    ["tokens"],
    ["experiments", "list"],
    ["experiments", "show"],
    ["experiments", "best"],
    ["experiments", "archive"],
    ["experiments", "delete"],
    ["observations", "export"],
    ["observations", "import"],
    ["plot"],
]


def fits(text: str, width: int = 80) -> None:
    """Every line within ``width`` terminal columns (wide characters take two)."""
    too_wide = [line for line in text.splitlines() if display_width(line) > width]
    assert not too_wide, too_wide


def display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def test_help_lists_every_command_with_examples():
    out = ok(run_cli("unused:1", "--help"))
    for name in ("serve", "tokens", "experiments", "observations", "plot"):
        assert re.search(rf"^\s+{name}\s", out, re.M), name
    assert "examples:" in out
    for action in ("list", "show", "best", "archive", "delete", "export", "import", "--kind"):
        assert action in out
    for leaf in LEAVES:
        text = ok(run_cli("unused:1", *leaf, "--help"))
        examples = text[text.index("\nexamples:\n") :]
        assert f"\n  optserve {' '.join(leaf)}" in examples, leaf


def test_list_shows_every_experiment_within_80_columns(cli_server, experiments):
    out = ok(run_cli(cli_server.target, "experiments", "list"))
    fits(out)
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "PROJECT",
        "TYPE",
        "STATE",
        "OBSERVED",
        "OPEN",
        "BEST",
        "CREATED",
    ]
    rows = {line.split()[0]: line for line in lines[1:]}
    mixed = rows[experiments.mixed.id]
    assert "random" in mixed and "active" in mixed and "cli-tests" in mixed
    assert " 15/40 " in mixed
    assert re.search(r"\s2\s", mixed)  # open suggestions
    listed = json.loads(ok(run_cli(cli_server.target, "experiments", "list", "--json")))
    assert {e["id"] for e in listed} == set(rows)


def test_list_filters_by_project_and_state(cli_server, experiments):
    out = ok(run_cli(cli_server.target, "experiments", "list", "--project", "cli-tests"))
    ids = [line.split()[0] for line in out.splitlines()[1:]]
    assert experiments.mixed.id in ids and experiments.two_metrics.id not in ids
    out = ok(run_cli(cli_server.target, "experiments", "list", "--project", "nothing-here"))
    assert out.strip() == "no experiments"


def test_show_prints_the_definition_and_progress(cli_server, experiments):
    out = ok(run_cli(cli_server.target, "experiments", "show", experiments.mixed.id))
    fits(out)
    assert out.startswith(f"experiment {experiments.mixed.id}: mixed space\n")
    assert re.search(r"observations\s+15 \(1 failed\)", out)
    assert re.search(r"open suggestions\s+2", out)
    assert re.search(r"^lr\s+double\s+\[0.0001, 0.1\]\s+log", out, re.M)
    assert re.search(r"^optimizer\s+categorical\s+adam, sgd, rmsprop", out, re.M)
    assert re.search(r"^seconds\s+maximize\s+store", out, re.M)
    as_json = json.loads(
        ok(run_cli(cli_server.target, "experiments", "show", experiments.mixed.id, "--json"))
    )
    assert as_json["progress"]["observation_count"] == 15


def test_best_prints_the_servers_best_observation(cli_server, cli_stub, experiments):
    best = cli_stub.GetBestAssignments(
        pb.GetBestAssignmentsRequest(experiment_id=experiments.mixed.id)
    ).observations
    out = ok(run_cli(cli_server.target, "experiments", "best", experiments.mixed.id))
    fits(out)
    assert len(best) == 1
    accuracy = next(v.value for v in best[0].values if v.name == "accuracy")
    assert f"observation {best[0].id}: accuracy = {accuracy:.6g}" in out
    assert re.search(
        rf"^\s+optimizer\s+{best[0].assignments['optimizer'].string_value}$", out, re.M
    )
    front = json.loads(
        ok(run_cli(cli_server.target, "experiments", "best", experiments.two_metrics.id, "--json"))
    )
    expected = cli_stub.GetBestAssignments(
        pb.GetBestAssignmentsRequest(experiment_id=experiments.two_metrics.id)
    ).observations
    assert len(expected) > 1
    assert [o["id"] for o in front] == [o.id for o in expected]


def test_archive_and_undo(cli_server, cli_stub):
    exp = create(cli_stub, **MIXED)
    out = ok(run_cli(cli_server.target, "experiments", "archive", exp.id))
    assert out.strip() == f"experiment {exp.id} is archived"
    assert get(cli_stub, exp.id).state == experiment_pb2.EXPERIMENT_STATE_ARCHIVED
    ok(run_cli(cli_server.target, "experiments", "archive", exp.id, "--undo"))
    assert get(cli_stub, exp.id).state == experiment_pb2.EXPERIMENT_STATE_ACTIVE
    # a soft-deleted experiment is not quietly restored by archive or its undo
    cli_stub.UpdateExperiment(
        pb.UpdateExperimentRequest(
            experiment=experiment_pb2.Experiment(
                id=exp.id, state=experiment_pb2.EXPERIMENT_STATE_DELETED
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["state"]),
        )
    )
    for extra in ([], ["--undo"]):
        refused = run_cli(cli_server.target, "experiments", "archive", exp.id, *extra)
        assert refused.returncode == 1 and "is deleted" in refused.stderr
    assert get(cli_stub, exp.id).state == experiment_pb2.EXPERIMENT_STATE_DELETED


def test_delete_needs_confirmation(cli_server, cli_stub):
    exp = create(cli_stub, **MIXED)
    refused = run_cli(cli_server.target, "experiments", "delete", exp.id)
    assert refused.returncode == 1
    assert "not deleted" in refused.stderr and "--yes" in refused.stderr
    assert get(cli_stub, exp.id).id == exp.id
    out = ok(run_cli(cli_server.target, "experiments", "delete", exp.id, "--yes"))
    assert out.startswith(f"deleted experiment {exp.id} ")
    missing = run_cli(cli_server.target, "experiments", "show", exp.id)
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"optserve: NOT_FOUND: experiment '{exp.id}' not found")


def test_bad_requests_show_the_field_violations(cli_server):
    result = run_cli(cli_server.target, "experiments", "show", "007")
    assert result.returncode == 1
    first, *violations = result.stderr.splitlines()
    assert first.startswith("optserve: INVALID_ARGUMENT: ")
    assert len(violations) == 1
    assert violations[0].startswith("  id: '007' is not an id")


def test_an_unreachable_server_is_one_line(tmp_path):
    result = run_cli("127.0.0.1:1", "experiments", "list")
    assert result.returncode == 1
    assert result.stderr.startswith("optserve: cannot reach a server at 127.0.0.1:1")
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("token")
    token_file = directory / "token"
    token_file.write_text("s3cret-token\n")
    running = start_server(directory / "optserve.db", "--token-file", str(token_file), drain=True)
    yield running
    assert running.stop() == 0


def test_the_token_comes_from_optserve_token(token_server):
    refused = run_cli(token_server.target, "experiments", "list")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "optserve: missing, unknown or revoked token (set env OPTSERVE_TOKEN to a valid token)"
    )
    out = ok(
        run_cli(token_server.target, "experiments", "list", env={"OPTSERVE_TOKEN": "s3cret-token"})
    )
    assert out.strip() == "no experiments"


def test_names_that_would_break_a_table(cli_server, cli_stub):
    odd = create(
        cli_stub,
        name="最適化の実験: a long name of wide characters " + "x" * 50,
        project="cli-odd-names",
    )
    out = ok(run_cli(cli_server.target, "experiments", "list", "--project", "cli-odd-names"))
    fits(out)
    _, row = out.splitlines()
    assert row.split()[0] == odd.id
    assert row.split()[1].startswith("最適化の実")
    shown = ok(run_cli(cli_server.target, "experiments", "show", odd.id))
    assert shown.splitlines()[0].startswith(f"experiment {odd.id}: 最適化の実験: a long name")
    # control characters are refused in names now; a database from before may hold them
    assert cell_text("two\nlines\tand \x1b[2J") == "two\ufffdlines\ufffdand \ufffd[2J"
