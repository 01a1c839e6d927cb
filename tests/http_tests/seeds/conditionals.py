"""sigopt-conditional-experiments.txt: the experiment create, as written there, then
suggestions and observations (the document shows the assignments they carry)."""

import json

from sigopt import Connection

conn = Connection()  # filled in: token and URL from the environment

experiment = conn.experiments().create(
    name="Deep Learning with Conditionals",
    project="sigopt-examples",
    conditionals=[
        dict(
            name="num_conv_layers",
            values=["1", "2", "3"],
        ),
    ],
    parameters=[
        dict(
            name="layer_1_num_filters",
            conditions=dict(num_conv_layers=["1", "2", "3"]),
            type="int",
            bounds=dict(min=100, max=300),
        ),
        dict(
            name="layer_1_filter_size",
            conditions=dict(num_conv_layers=["1", "2", "3"]),
            type="int",
            bounds=dict(min=2, max=10),
        ),
        dict(
            name="layer_2_num_filters",
            conditions=dict(num_conv_layers=["2", "3"]),
            type="int",
            bounds=dict(min=100, max=300),
        ),
        dict(
            name="layer_2_filter_size",
            conditions=dict(num_conv_layers=["2", "3"]),
            type="int",
            bounds=dict(min=4, max=8),
        ),
        dict(
            name="layer_3_num_filters",
            conditions=dict(num_conv_layers="3"),
            type="int",
            bounds=dict(min=100, max=300),
        ),
        dict(
            name="layer_3_filter_size",
            conditions=dict(num_conv_layers="3"),
            type="int",
            bounds=dict(min=3, max=5),
        ),
    ],
    metrics=[dict(name="Accuracy", objective="maximize")],
    parallel_bandwidth=1,
    observation_budget=200,
)

seen = []
for _ in range(12):  # filled in: a few rounds of the loop
    suggestion = conn.experiments(experiment.id).suggestions().create()
    seen.append(dict(suggestion.assignments))
    a = suggestion.assignments
    accuracy = a["layer_1_num_filters"] / 300 + int(a["num_conv_layers"]) / 10
    conn.experiments(experiment.id).observations().create(
        suggestion=suggestion.id, values=[dict(name="Accuracy", value=accuracy)]
    )
experiment = conn.experiments(experiment.id).fetch()
print(
    "RESULT "
    + json.dumps(
        {
            "project": experiment.project,
            "conditionals": [c.name for c in experiment.conditionals],
            "conditions": {p.name: dict(p.conditions) for p in experiment.parameters},
            "observation_count": experiment.progress.observation_count,
            "seen": seen,
        }
    )
)
