"""The dashboard in a real headless Chromium against a real server and real experiments:
pages load without console errors, charts hold one point per observation, tables sort,
and the page follows new observations without a reload."""

from __future__ import annotations

from optserve.v1 import service_pb2 as pb

from ..service_tests.helpers import create, double, observe, suggest
from .conftest import start_dashboard


def test_the_list_shows_every_experiment(dashboard, experiments, page):
    page.page.goto(dashboard.url)
    page.wait_rows("experiments", 2)
    rows = page.page.locator("#experiments tbody tr")
    by_id = {rows.nth(i).get_attribute("data-id"): rows.nth(i).inner_text() for i in range(2)}
    single = by_id[experiments.single.id]
    assert "dashboard single" in single and "random" in single and "active" in single
    assert "10/30" in single
    assert "12/40" in by_id[experiments.pareto.id]
    # newest first, and each name links to its page
    assert list(by_id) == [experiments.pareto.id, experiments.single.id]
    page.page.click("text=dashboard single")
    page.page.wait_for_selector("#title")
    assert page.page.url.endswith(f"#/experiments/{experiments.single.id}")
    assert page.errors == []


def test_an_experiment_page_draws_each_observation(dashboard, experiments, page):
    page.page.goto(f"{dashboard.url}#/experiments/{experiments.single.id}")
    page.wait_rows("observations", 10)
    page.wait_rows("open-suggestions", 2)
    assert page.page.inner_text("#title") == (
        f"dashboard single (experiment {experiments.single.id})"
    )
    history = page.series("chart-history")
    assert history["observation"] == 9
    assert history["failed"] == 1
    assert history["violates a constraint"] == 0
    assert history["best so far"] == 10  # from the first observation on
    assert page.series("chart-parallel") == {"0": 9}
    page.page.wait_for_function(
        """() => { const c = echarts.getInstanceByDom(document.getElementById('chart-importance'));
                   return c && c.getOption().yAxis && c.getOption().yAxis[0].data.length === 3; }"""
    )
    names = page.page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('chart-importance'))"
        ".getOption().yAxis[0].data"
    )
    assert sorted(names) == ["kind", "n", "x"]
    # no Pareto or constraint cards for one metric and no constraint metrics
    assert page.page.locator("#chart-pareto").count() == 0
    assert page.page.locator("#feasibility-note").count() == 0
    # the best observation is marked, the failed one too
    assert page.page.locator("#observations tr.best").count() == 1
    assert page.page.locator("#observations tr.failed").count() == 1
    assert page.errors == []


def test_observations_sort_by_a_column(dashboard, experiments, page):
    page.page.goto(f"{dashboard.url}#/experiments/{experiments.single.id}")
    page.wait_rows("observations", 10)
    column = page.page.locator("#observations th", has_text="loss")
    losses = sorted(v for v in experiments.losses if v is not None)

    def shown() -> list[str]:
        cells = page.page.locator("#observations tbody tr td:last-child")
        return [cells.nth(i).inner_text() for i in range(cells.count())]

    column.click()
    assert shown()[:-1] == [f"{float(f'{v:.6g}'):g}" for v in losses]
    assert shown()[-1] == "-"  # the failed observation has no value: last either way
    column.click()
    assert shown()[:-1] == [f"{float(f'{v:.6g}'):g}" for v in reversed(losses)]
    assert column.get_attribute("aria-sort") == "descending"
    assert page.errors == []


def test_pareto_front_and_constraint_metrics(dashboard, experiments, page):
    stub = dashboard.stub()
    exp = experiments.pareto
    front = stub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=exp.id)).observations
    listed = stub.ListObservations(pb.ListObservationsRequest(experiment_id=exp.id)).observations
    satisfied = sum(1 for o in listed if next(v.value for v in o.values if v.name == "cost") <= 0.8)
    page.page.goto(f"{dashboard.url}#/experiments/{exp.id}")
    page.wait_rows("observations", 12)
    pareto = page.series("chart-pareto")
    assert pareto["Pareto front"] == len(front) > 0
    assert sum(pareto.values()) == 12
    assert page.page.inner_text("#feasibility-note") == (
        f"{satisfied} of 12 successful observations satisfy every constraint metric."
    )
    feasibility = page.series("chart-feasibility-0")
    assert feasibility == {"satisfied": satisfied, "violated": 12 - satisfied}
    assert page.errors == []


def test_the_page_follows_new_observations_without_a_reload(dashboard, experiments, page):
    stub = dashboard.stub()
    exp = experiments.single
    page.page.goto(f"{dashboard.url}#/experiments/{exp.id}")
    page.wait_rows("observations", 10)
    page.wait_rows("open-suggestions", 2)
    page.page.evaluate("() => { window.sameDocument = true; }")
    open_ids = [
        s.id
        for s in stub.ListSuggestions(
            pb.ListSuggestionsRequest(experiment_id=exp.id, state=1)
        ).suggestions
    ]
    observe(stub, exp.id, suggestionId=open_ids[0], values=[{"name": "loss", "value": -1.0}])
    page.wait_rows("observations", 11)
    page.wait_rows("open-suggestions", 1)
    assert page.page.evaluate("() => window.sameDocument") is True
    assert page.series("chart-history")["observation"] == 10
    assert page.series("chart-parallel") == {"0": 10}
    # the new observation is the best (loss -1 is minimal): marked in the table
    best = page.page.locator("#observations tr.best td:nth-child(2)")
    assert (
        best.inner_text()
        == [
            o.id
            for o in stub.ListObservations(
                pb.ListObservationsRequest(experiment_id=exp.id)
            ).observations
        ][-1]
    )
    assert page.errors == []


def test_an_unknown_experiment_says_so(dashboard, experiments, page):
    page.page.goto(f"{dashboard.url}#/experiments/987654")
    page.page.wait_for_selector("#error:not([hidden])")
    assert page.page.inner_text("#error") == "experiment '987654' not found"


def test_a_server_with_tokens_asks_for_one(tmp_path, page):
    server = start_dashboard(tmp_path, env={"OPTSERVE_SERVER_TOKEN": "dashboard-secret"})
    try:
        page.page.goto(server.url)
        page.page.wait_for_selector("#login:not([hidden])")
        assert page.page.inner_text("#error") == "this server needs a token"
        page.page.fill("#token", "wrong-secret")
        page.page.click("#login button")
        page.page.wait_for_selector("#login:not([hidden])")
        page.page.fill("#token", "dashboard-secret")
        page.page.click("#login button")
        page.page.wait_for_selector("#list p")
        assert page.page.inner_text("#list") == "No experiments yet."
        assert page.page.is_hidden("#login")
        # the browser was refused twice (no token, a wrong one), and nothing else went wrong
        refused = [e for e in page.errors if "401" in e]
        assert len(refused) == len(page.errors) == 2
    finally:
        assert server.stop() == 0


def test_names_of_object_members_and_updated_values_show_as_data(dashboard, page):
    """Parameters and metrics named like JavaScript's object members show their own
    values ("-" when absent), and an updated observation redraws the open page."""
    stub = dashboard.stub()
    exp = create(
        stub,
        name="object members",
        type="EXPERIMENT_TYPE_RANDOM",
        parameters=[double("__proto__"), double("constructor")],
        metrics=[
            {"name": "toString"},
            {"name": "valueOf", "strategy": "METRIC_STRATEGY_STORE"},
        ],
    )
    made = []
    for i in range(4):
        (s,) = suggest(stub, exp.id)
        made.append(
            observe(stub, exp.id, suggestionId=s.id, values=[{"name": "toString", "value": i}])
        )
    page.page.goto(f"{dashboard.url}#/experiments/{exp.id}")
    page.wait_rows("observations", 4)
    text = page.page.locator("#observations").inner_text()
    assert "function" not in text and "[object Object]" not in text, text
    page.page.select_option("#metric", "valueOf")
    page.page.select_option("#metric", "toString")
    stub.UpdateObservation(
        pb.UpdateObservationRequest(
            experiment_id=exp.id,
            observation={"id": made[0].id, "values": [{"name": "toString", "value": 1234.5}]},
            update_mask={"paths": ["values"]},
        )
    )
    page.page.wait_for_function(
        "() => document.querySelector('#observations').innerText.includes('1234.5')",
        timeout=20_000,
    )
    assert page.errors == []


def test_the_page_runs_under_its_content_security_policy(dashboard, experiments, page):
    response = page.page.goto(f"{dashboard.url}#/experiments/{experiments.single.id}")
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    page.page.wait_for_selector("#observations tbody tr")
    # a chart's tooltip (markup with inline styles) shows without a violation
    page.page.evaluate(
        """() => echarts.getInstanceByDom(document.getElementById('chart-history'))
             .dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 0})"""
    )
    page.page.wait_for_function(
        """() => [...document.querySelectorAll('#chart-history div')]
             .some(d => d.style.display !== 'none' && d.innerText.includes('observation'))""",
        timeout=10_000,
    )
    assert page.errors == []
    # while a script injected into the page does not run
    ran = page.page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.injected = true';
                   document.body.appendChild(s);
                   return window.injected === true; }"""
    )
    assert ran is False
    assert any("Content Security Policy" in e for e in page.errors)
