"""sigopt-experiment-client-calls.txt: create_experiment, both loop forms, get_experiment,
refresh, get_runs, get_best_runs, archive. The document's create call leaves its budget
out (without one, loop() never ends, on SigOpt too): budget is filled in."""

import json

import sigopt

experiment = sigopt.create_experiment(
    name="Keras Model Optimization (Python)",
    parameters=[  # filled in: the document drops this line
        dict(name="hidden_layer_size", type="int", bounds=dict(min=32, max=128)),
        dict(name="activation_fn", type="categorical", categorical_values=["relu", "tanh"]),
    ],
    metrics=[dict(name="holdout_accuracy", objective="maximize")],
    budget=6,  # filled in
)


def accuracy(params):  # filled in
    return params.hidden_layer_size / 128 + (0.1 if params.activation_fn == "relu" else 0)


count = 0
for run in experiment.loop():
    with run:
        run.log_metric("holdout_accuracy", accuracy(run.params))
        count += 1
        if count == 3:
            break
while not experiment.is_finished():
    with experiment.create_run() as run:
        run.log_metric("holdout_accuracy", accuracy(run.params))
        count += 1

fetched = sigopt.get_experiment(experiment.id)
fetched.refresh()
runs = list(fetched.get_runs())
best = list(fetched.get_best_runs())
fetched.archive()
print(
    "RESULT "
    + json.dumps(
        {
            "count": count,
            "finished": fetched.is_finished(),
            "runs": sorted((r.state, sorted(r.assignments)) for r in runs),
            "best": [r.values["holdout_accuracy"].value for r in best],
            "all": [r.values["holdout_accuracy"].value for r in runs],
            "state": fetched.state,
        }
    )
)
