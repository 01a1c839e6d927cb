"""sigopt-parameter-constraints.txt (AI Module) and sigopt-experiment-client-calls.txt
through the official client's AI module: create_experiment, loop(), runs, get_runs(),
get_best_runs(), archive(). The project is the current directory's name, as the client
defaults it (the document's project= argument is refused by the client itself: "The
project field is not permitted in the AIExperiment")."""

import json

import sigopt

experiment = sigopt.create_experiment(
    name="Single metric optimization with linear constraints",
    type="offline",
    parameters=[
        dict(name="alpha", type="double", bounds=dict(min=0.0, max=1.0)),
        dict(name="beta", type="double", bounds=dict(min=0.0, max=1.0)),
        dict(name="gamma", type="int", bounds=dict(min=0, max=10)),
        dict(name="theta", type="int", bounds=dict(min=0, max=10)),
    ],
    metrics=[dict(name="metric_value", objective="maximize")],
    budget=80,
    parallel_bandwidth=1,
    linear_constraints=[
        # Constraint inequality: alpha + beta <= 1
        dict(
            type="less_than",
            threshold=1,
            terms=[
                dict(name="alpha", weight=1),
                dict(name="beta", weight=1),
            ],
        ),
        # Constraint inequality: 3 * gamma - 5 * theta >= 0
        dict(
            type="greater_than",
            threshold=0,
            terms=[
                dict(name="gamma", weight=3),
                dict(name="theta", weight=-5),
            ],
        ),
    ],
)

seen = []
for run in experiment.loop():
    with run:
        p = run.params  # filled in: the document's evaluation
        seen.append(dict(alpha=p.alpha, beta=p.beta, gamma=p.gamma, theta=p.theta))
        run.log_metric("metric_value", p.alpha + 2 * p.beta - 0.05 * (p.gamma - 7) ** 2)

runs = list(experiment.get_runs())
best = list(experiment.get_best_runs())
experiment.archive()
again = sigopt.get_experiment(experiment.id)
print(
    "RESULT "
    + json.dumps(
        {
            "experiment": experiment.id,
            "project": experiment.project,
            "seen": seen,
            "runs": [(r.id, r.state, r.values["metric_value"].value) for r in runs],
            "best": [(r.id, r.values["metric_value"].value) for r in best],
            "state": experiment.state,
            "fetched_state": again.state,
            "progress": [again.progress.total_run_count, again.progress.remaining_budget],
        }
    )
)
