"""The seeds' Python examples through the official sigopt 8.8.3 client, in fresh
processes whose environment names the server only by SIGOPT_API_URL and
SIGOPT_API_TOKEN (the AI module's project is the working directory's name, created
once with the client's own ``sigopt.create_project()``, as a SigOpt user does; its CLI
``sigopt create project`` does the same but needs setuptools' pkg_resources)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import HttpServer

SEEDS = Path(__file__).parent / "seeds"


def run_script(
    server: HttpServer, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "SIGOPT_API_URL": server.url,
        "SIGOPT_API_TOKEN": "client-token",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def result(
    server: HttpServer, cwd: Path, script: str, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    done = run_script(server, cwd, str(SEEDS / script), *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture
def project_dir(http_server: HttpServer, tmp_path: Path) -> Path:
    """A directory named like a project, and that project created by the client."""
    cwd = tmp_path / "sigopt-examples"
    cwd.mkdir()
    done = run_script(http_server, cwd, "-c", "import sigopt; sigopt.create_project()")
    # a second test of the session finds the project there already: 409, reported so
    assert done.returncode == 0 or "ConflictingProjectException" in done.stderr, done.stderr
    return cwd


def _constraints_hold(a: dict[str, Any]) -> bool:
    return (
        a["alpha"] + a["beta"] <= 1 + 1e-12
        and 3 * a["gamma"] - 5 * a["theta"] >= 0
        and isinstance(a["gamma"], int)
        and isinstance(a["theta"], int)
    )


def test_core_module_optimization_loop(http_server: HttpServer, tmp_path: Path) -> None:
    out = result(http_server, tmp_path, "optimization_loop.py")
    assert out["observation_count"] == 80
    assert len(out["seen"]) == 80  # the first round of the document, then the loop
    assert all(_constraints_hold(a) for a in out["seen"])
    best = out["best"]
    value = best["alpha"] + 2 * best["beta"] - 0.05 * (best["gamma"] - 7) ** 2
    assert value - 0.1 * best["theta"] == pytest.approx(out["best_value"])


def test_conditional_experiment(http_server: HttpServer, tmp_path: Path) -> None:
    out = result(http_server, tmp_path, "conditionals.py")
    assert out["project"] == "sigopt-examples"
    assert out["conditionals"] == ["num_conv_layers"]
    assert out["conditions"]["layer_3_num_filters"] == {"num_conv_layers": ["3"]}
    assert out["observation_count"] == 12
    for a in out["seen"]:
        layers = int(a["num_conv_layers"])
        expected = {"num_conv_layers"} | {
            f"layer_{k}_{what}"
            for k in range(1, layers + 1)
            for what in ("num_filters", "filter_size")
        }
        assert set(a) == expected
        assert 100 <= a["layer_1_num_filters"] <= 300


def test_ai_module_with_constraints(http_server: HttpServer, project_dir: Path) -> None:
    out = result(http_server, project_dir, "ai_constraints.py")
    assert out["project"] == "sigopt-examples"
    assert len(out["seen"]) == 80 and all(_constraints_hold(a) for a in out["seen"])
    assert len(out["runs"]) == 80 and {state for _, state, _ in out["runs"]} == {"completed"}
    best_value = max(v for _, _, v in out["runs"])
    assert [v for _, v in out["best"]] == [best_value]
    assert out["state"] == out["fetched_state"] == "deleted"
    assert out["progress"] == [80, 0]


def test_experiment_client_calls(http_server: HttpServer, project_dir: Path) -> None:
    out = result(http_server, project_dir, "client_calls.py")
    assert out["count"] == 6 and out["finished"] is True
    assert out["runs"] == [["completed", ["activation_fn", "hidden_layer_size"]]] * 6
    assert out["best"] == [max(out["all"])]
    assert out["state"] == "deleted"


def test_missing_project_is_the_clients_project_not_found(
    http_server: HttpServer, tmp_path: Path
) -> None:
    cwd = tmp_path / "never-created"
    cwd.mkdir()
    done = run_script(http_server, cwd, str(SEEDS / "client_calls.py"))
    assert done.returncode != 0
    assert "ProjectNotFoundException" in done.stderr and "never-created" in done.stderr


def test_integration_readme_create_then_run(http_server: HttpServer, tmp_path: Path) -> None:
    # the project of SIGOPT_PROJECT exists first, as on SigOpt; the key is SIGOPT_KEY
    env = {"SIGOPT_KEY": "client-token", "SIGOPT_PROJECT": "sparse_gsc"}
    made = run_script(
        http_server, tmp_path, "-c", "import sigopt; sigopt.create_project()", env=env
    )
    assert made.returncode == 0 or "ConflictingProjectException" in made.stderr, made.stderr
    created = result(http_server, tmp_path, "integration_readme.py", "--create_sigopt", env=env)
    out = result(
        http_server, tmp_path, "integration_readme.py", created["sigopt_experiment_id"], env=env
    )
    assert (out["project"], out["parallel_bandwidth"], out["observation_count"]) == (
        "sparse_gsc",
        2,
        6,
    )
    assert out["most_open"] == 2
    assert out["best"] == [pytest.approx(out["best_value"])]
