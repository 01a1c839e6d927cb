"""`optserve plot` against a real server: PNG files of the right size that are not blank,
and (through SVG output, where each drawn point is an element) the right number of points."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from optserve.v1 import service_pb2 as pb

from ..service_tests.helpers import create, double, observe, suggest
from .conftest import ok, run_cli, values_of

SVG = "{http://www.w3.org/2000/svg}"


def check_png(path: Path, size: tuple[int, int]) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.size == size
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=size[0] * size[1])
    assert colours is not None
    # text, markers and lines, antialiased: far more than a blank or one-colour image
    assert len(colours) > 100
    white = sum(count for count, colour in colours if colour == (255, 255, 255))
    assert white < 0.97 * size[0] * size[1]


def drawn(svg: Path, gid: str, element: str) -> int:
    """How many ``element``s the artist with ``gid`` drew (0 when it is absent)."""
    root = ET.parse(svg).getroot()
    groups = [e for e in root.iter() if e.get("id") == gid]
    assert len(groups) <= 1
    return sum(1 for _ in groups[0].iter(SVG + element)) if groups else 0


@pytest.mark.parametrize("kind", ["history", "parallel", "importance"])
def test_single_metric_plots_are_png_files(cli_server, experiments, tmp_path, kind):
    out = tmp_path / f"{kind}.png"
    printed = ok(
        run_cli(cli_server.target, "plot", experiments.mixed.id, "--kind", kind, "-o", str(out))
    )
    assert printed.splitlines()[-1] == f"wrote {out} ({kind}, 960x600 px)"
    check_png(out, (960, 600))


def test_size_and_resolution_are_chosen(cli_server, experiments, tmp_path):
    out = tmp_path / "small.png"
    ok(
        run_cli(
            cli_server.target,
            "plot",
            experiments.mixed.id,
            "-o",
            str(out),
            "--width",
            "6",
            "--height",
            "4",
            "--dpi",
            "100",
        )
    )
    check_png(out, (600, 400))


def test_history_draws_each_observation(cli_server, experiments, tmp_path):
    svg = tmp_path / "history.svg"
    ok(
        run_cli(
            cli_server.target, "plot", experiments.mixed.id, "--kind", "history", "-o", str(svg)
        )
    )
    assert drawn(svg, "observations", "use") == 14
    assert drawn(svg, "failed", "use") == 1
    assert drawn(svg, "infeasible", "use") == 0
    # a stored metric can be plotted too
    ok(
        run_cli(
            cli_server.target, "plot", experiments.mixed.id, "--metric", "seconds", "-o", str(svg)
        )
    )
    assert drawn(svg, "observations", "use") == 14


def test_parallel_coordinates_draw_a_line_per_observation(cli_server, experiments, tmp_path):
    svg = tmp_path / "parallel.svg"
    ok(
        run_cli(
            cli_server.target, "plot", experiments.mixed.id, "--kind", "parallel", "-o", str(svg)
        )
    )
    assert drawn(svg, "observations", "path") == 14


def test_pareto_front_is_the_servers(cli_server, cli_stub, experiments, tmp_path):
    exp = experiments.two_metrics
    front = cli_stub.GetBestAssignments(
        pb.GetBestAssignmentsRequest(experiment_id=exp.id)
    ).observations
    png = tmp_path / "front.png"
    ok(run_cli(cli_server.target, "plot", exp.id, "--kind", "pareto", "-o", str(png)))
    check_png(png, (960, 600))
    svg = tmp_path / "front.svg"
    ok(run_cli(cli_server.target, "plot", exp.id, "--kind", "pareto", "-o", str(svg)))
    assert drawn(svg, "observations", "use") == 12
    assert drawn(svg, "pareto-front", "use") == len(front) > 1


def test_importance_finds_the_parameter_that_matters(cli_server, cli_stub, tmp_path):
    exp = create(
        cli_stub,
        name="only x matters",
        type="EXPERIMENT_TYPE_RANDOM",
        parameters=[double("x"), double("z")],
        metrics=[{"name": "y"}],
    )
    for s in suggest(cli_stub, exp.id, count=25):
        x = values_of(s)["x"]
        observe(
            cli_stub, exp.id, suggestionId=s.id, values=[{"name": "y", "value": math.sin(6 * x)}]
        )
    out = ok(
        run_cli(
            cli_server.target,
            "plot",
            exp.id,
            "--kind",
            "importance",
            "-o",
            str(tmp_path / "importance.png"),
        )
    )
    rows = [line.split() for line in out.splitlines()[1:-1]]
    assert [name for name, _ in rows] == ["x", "z"]
    scores = {name: float(score) for name, score in rows}
    assert scores["x"] > 0.8
    assert abs(sum(scores.values()) - 1) < 0.002


def test_plots_that_cannot_be_drawn_are_refused(cli_server, cli_stub, experiments, tmp_path):
    out = str(tmp_path / "x.png")

    def refusal(*args: str) -> str:
        result = run_cli(cli_server.target, "plot", *args)
        assert result.returncode == 1
        assert not (tmp_path / "x.png").exists()
        return result.stderr.strip()

    mixed = experiments.mixed.id
    assert refusal(mixed, "--kind", "pareto", "-o", out) == (
        f"optserve: pareto needs two optimized metrics; experiment {mixed} has 1"
    )
    assert refusal(mixed, "--metric", "loss", "-o", out) == (
        f"optserve: 'loss' is not a metric of experiment {mixed} (its metrics: accuracy, seconds)"
    )
    assert re.fullmatch(
        r"optserve: -o .*x\.jpg: the file name ends in one of .png, .svg, .pdf",
        refusal(mixed, "-o", str(tmp_path / "x.jpg")),
    )
    empty = create(cli_stub, name="empty", parameters=[double("x")], metrics=[{"name": "v"}])
    assert refusal(empty.id, "--kind", "importance", "-o", out) == (
        f"optserve: importance needs at least 3 observations of 'v'; experiment {empty.id} has 0"
    )
    assert refusal(empty.id, "-o", out) == (
        f"optserve: experiment {empty.id} has no observation of 'v' to plot yet"
    )


def test_parallel_coordinates_with_conditionals(cli_server, cli_stub, tmp_path):
    exp = create(
        cli_stub,
        name="conditional",
        conditionals=[{"name": "model", "values": ["svm", "tree"]}],
        parameters=[
            double("c", 0.01, 10, conditions={"model": {"values": ["svm"]}}),
            {
                "name": "depth",
                "type": "PARAMETER_TYPE_INT",
                "bounds": {"min": 1, "max": 12},
                "conditions": {"model": {"values": ["tree"]}},
            },
            double("x"),
        ],
        metrics=[{"name": "score"}],
    )
    models = []
    for _ in range(8):
        s = suggest(cli_stub, exp.id)[0]
        a = values_of(s)
        models.append(a["model"])
        score = a["x"] + (a["c"] / 10 if a["model"] == "svm" else a["depth"] / 12)
        observe(cli_stub, exp.id, suggestionId=s.id, values=[{"name": "score", "value": score}])
    svg = tmp_path / "parallel.svg"
    ok(run_cli(cli_server.target, "plot", exp.id, "--kind", "parallel", "-o", str(svg)))
    assert drawn(svg, "observations", "path") == 8
    text = svg.read_text()
    # an axis per conditional and parameter, the conditional's values written on it
    for label in ("model", "c", "depth", "x", "score", *set(models)):
        assert f"<!-- {label} -->" in text, label
