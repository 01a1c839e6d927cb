"""sigopt-integration-readme.txt: a `--create_sigopt` step makes the experiment of a
config's sigopt_config (name, parameters, metrics, parallel_bandwidth,
observation_budget, and the project of SIGOPT_PROJECT) and prints its id; a run given
that id then works through the budget with parallel_bandwidth suggestions open at a
time. The token is SIGOPT_KEY, as the document sets it. The config and the training
are filled in."""

import json
import os
import sys

from sigopt import Connection

conn = Connection(client_token=os.environ["SIGOPT_KEY"])

sigopt_config = dict(
    name="sparse_gsc_onecyclelr_v2",
    parameters=[
        dict(name="max_lr", type="double", bounds=dict(min=0.01, max=0.5), transformation="log"),
        dict(name="pct_start", type="double", bounds=dict(min=0.1, max=0.5)),
        dict(name="epochs", type="int", bounds=dict(min=10, max=30)),
    ],
    metrics=[dict(name="accuracy", objective="maximize")],
    parallel_bandwidth=2,
    observation_budget=6,
    project=os.environ["SIGOPT_PROJECT"],
)


def train(params):
    return 1 - (params["max_lr"] - 0.1) ** 2 - (params["pct_start"] - 0.3) ** 2


if sys.argv[1:] == ["--create_sigopt"]:
    experiment = conn.experiments().create(**sigopt_config)
    print("RESULT " + json.dumps({"sigopt_experiment_id": experiment.id}))
    sys.exit(0)

experiment = conn.experiments(sys.argv[1]).fetch()
most_open = 0
while experiment.progress.observation_count < experiment.observation_budget:
    suggestions = [
        conn.experiments(experiment.id).suggestions().create()
        for _ in range(experiment.parallel_bandwidth)
    ]
    opened = conn.experiments(experiment.id).suggestions().fetch(state="open")
    most_open = max(most_open, len(list(opened.iterate_pages())))
    for suggestion in suggestions:
        conn.experiments(experiment.id).observations().create(
            suggestion=suggestion.id,
            values=[dict(name="accuracy", value=train(suggestion.assignments))],
        )
    experiment = conn.experiments(experiment.id).fetch()
best = conn.experiments(experiment.id).best_assignments().fetch()
print(
    "RESULT "
    + json.dumps(
        {
            "project": experiment.project,
            "parallel_bandwidth": experiment.parallel_bandwidth,
            "observation_count": experiment.progress.observation_count,
            "most_open": most_open,
            "best": [train(b.assignments) for b in best.data],
            "best_value": best.data[0].values[0].value,
        }
    )
)
