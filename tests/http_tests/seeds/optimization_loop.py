"""sigopt-parameter-constraints.txt (Core Module) and sigopt-optimization-loop.txt, as
written there, through the official client. Lines the documents leave out are marked
"filled in"; the server's URL and token come from SIGOPT_API_URL / SIGOPT_API_TOKEN only
when the documents' code does not give them."""

import json

from sigopt import Connection

conn = Connection(client_token="USER_TOKEN")
experiment = conn.experiments().create(
    name="Experiment with constraints",
    parameters=[
        dict(name="alpha", type="double", bounds=dict(min=0.0, max=1.0)),
        dict(name="beta", type="double", bounds=dict(min=0.0, max=1.0)),
        dict(name="gamma", type="int", bounds=dict(min=0, max=10)),
        dict(name="theta", type="int", bounds=dict(min=0, max=10)),
    ],
    metrics=[dict(name="metric_value", objective="maximize")],
    observation_budget=80,
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
EXPERIMENT_ID = experiment.id  # filled in
dataset = None  # filled in
seen = []  # filled in: what the test checks


def metric(a):  # filled in
    return a["alpha"] + 2 * a["beta"] - 0.05 * (a["gamma"] - 7) ** 2 - 0.1 * a["theta"]


def evaluate_metric(assignments, dataset):  # filled in
    seen.append(dict(assignments))
    return metric(assignments)


conn = Connection(client_token="SIGOPT_API_TOKEN")

suggestion = conn.experiments(EXPERIMENT_ID).suggestions().create()
value = evaluate_metric(suggestion.assignments, dataset)
observation = (
    conn.experiments(EXPERIMENT_ID)
    .observations()
    .create(
        suggestion=suggestion.id,
        value=value,  # filled in
    )
)

experiment = conn.experiments(EXPERIMENT_ID).fetch()

# Run the Optimization Loop until the Observation Budget is exhausted
while experiment.progress.observation_count < experiment.observation_budget:
    # Receive a suggestion
    suggestion = conn.experiments(experiment.id).suggestions().create()

    # Evaluate your metric
    value = evaluate_metric(suggestion.assignments, dataset)

    # Report an observation
    conn.experiments(experiment.id).observations().create(  # filled in
        suggestion=suggestion.id, value=value
    )

    # Update the experiment object
    experiment = conn.experiments(experiment.id).fetch()
# Fetch the best configuration and explore your experiment
best_assignments = conn.experiments(EXPERIMENT_ID).best_assignments().fetch().data[0].assignments
print("Best Assignments: " + str(best_assignments))  # str() filled in
print("Explore your experiment: https://app.sigopt.com/experiment/" + experiment.id + "/analysis")

print(
    "RESULT "
    + json.dumps(
        {
            "experiment": experiment.id,
            "observation_count": experiment.progress.observation_count,
            "seen": seen,
            "best": dict(best_assignments),
            "best_value": max(metric(s) for s in seen),
        }
    )
)
