"""`optserve experiments list|show|best|archive|delete`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf import field_mask_pb2, json_format

from .cli_client import (
    Client,
    CommandError,
    cell_text,
    confirm,
    fmt,
    minimizes,
    new_request_id,
    state_name,
    subcommand,
    table,
    type_name,
    value_of,
)
from .v1 import experiment_pb2, observation_pb2
from .v1 import service_pb2 as pb

STATES = {
    "all": experiment_pb2.EXPERIMENT_STATE_UNSPECIFIED,
    "active": experiment_pb2.EXPERIMENT_STATE_ACTIVE,
    "archived": experiment_pb2.EXPERIMENT_STATE_ARCHIVED,
    "deleted": experiment_pb2.EXPERIMENT_STATE_DELETED,
}
PARAMETER_TYPES = {
    experiment_pb2.PARAMETER_TYPE_DOUBLE: "double",
    experiment_pb2.PARAMETER_TYPE_INT: "int",
    experiment_pb2.PARAMETER_TYPE_CATEGORICAL: "categorical",
}
STRATEGIES = {
    experiment_pb2.METRIC_STRATEGY_UNSPECIFIED: "optimize",
    experiment_pb2.METRIC_STRATEGY_OPTIMIZE: "optimize",
    experiment_pb2.METRIC_STRATEGY_STORE: "store",
    experiment_pb2.METRIC_STRATEGY_CONSTRAINT: "constraint",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    experiments = sub.add_parser(
        "experiments",
        help="list, show, archive and delete experiments; their best assignments",
        description="Experiments of a running server.",
        epilog="examples:\n"
        "  optserve experiments list --state active\n"
        "  optserve experiments show 12\n"
        "  optserve experiments best 12\n"
        "  optserve experiments archive 12\n"
        "  optserve experiments delete 12 --yes\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = experiments.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = subcommand(
        actions,
        "list",
        "experiments, newest first, with state and progress",
        "  optserve experiments list\n"
        "  optserve experiments list --project vision --state active\n"
        "  optserve experiments list --json | jq '.[].id'\n",
        _list,
    )
    listing.add_argument("--project", default="", help="only this project's experiments")
    listing.add_argument("--state", choices=sorted(STATES), default="all")
    listing.add_argument(
        "--limit", type=int, default=100, help="at most this many, newest first (default 100)"
    )
    listing.add_argument("--json", action="store_true", help="the experiments as JSON")

    show = subcommand(
        actions,
        "show",
        "an experiment's definition and progress",
        "  optserve experiments show 12\n  optserve experiments show 12 --json\n",
        _show,
    )
    show.add_argument("experiment", help="experiment id")
    show.add_argument("--json", action="store_true", help="the experiment as JSON (API fields)")

    best = subcommand(
        actions,
        "best",
        "the best assignments so far (the Pareto front for two metrics)",
        "  optserve experiments best 12\n  optserve experiments best 12 --json\n",
        _best,
    )
    best.add_argument("experiment", help="experiment id")
    best.add_argument("--json", action="store_true", help="the observations as JSON")

    archive = subcommand(
        actions,
        "archive",
        "archive an experiment: it accepts no new suggestions or observations",
        "  optserve experiments archive 12\n  optserve experiments archive 12 --undo\n",
        _archive,
    )
    archive.add_argument("experiment", help="experiment id")
    archive.add_argument("--undo", action="store_true", help="make it active again")

    delete = subcommand(
        actions,
        "delete",
        "delete an experiment with its suggestions and observations",
        "  optserve experiments delete 12          (asks first)\n"
        "  optserve experiments delete 12 --yes    (in scripts)\n",
        _delete,
    )
    delete.add_argument("experiment", help="experiment id")
    delete.add_argument("--yes", action="store_true", help="do not ask; needed without a terminal")


# ---------------------------------------------------------------- list


def _best_value(exp: experiment_pb2.Experiment) -> str:
    best = exp.progress.best_observation
    if not exp.progress.HasField("best_observation") or not best.values:
        return "-"
    optimized = [m.name for m in exp.metrics if STRATEGIES[m.strategy] == "optimize"]
    for v in best.values:
        if v.name in optimized:
            return fmt(v.value)
    return "-"


def _observed(exp: experiment_pb2.Experiment) -> str:
    done = exp.progress.observation_count
    return f"{done}/{exp.observation_budget}" if exp.HasField("observation_budget") else str(done)


def _list(args: argparse.Namespace) -> None:
    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    client = Client(args)
    found = client.experiments(args.project, STATES[args.state], args.limit)
    if args.json:
        print(json.dumps([_as_json(e) for e in found], indent=2))
        return
    if not found:
        print("no experiments")
        return
    rows = [
        [
            e.id,
            e.name,
            e.project or "-",
            type_name(e.type),
            state_name(e.state),
            _observed(e),
            str(e.progress.open_suggestion_count),
            _best_value(e),
            e.create_time.ToDatetime().strftime("%Y-%m-%d"),
        ]
        for e in found
    ]
    print(
        table(
            ["ID", "NAME", "PROJECT", "TYPE", "STATE", "OBSERVED", "OPEN", "BEST", "CREATED"],
            rows,
            shrink=(1, 2),
            right=(0, 5, 6, 7),
        )
    )


def _as_json(message: Any) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# ---------------------------------------------------------------- show


def _bounds(p: experiment_pb2.Parameter) -> str:
    if p.type == experiment_pb2.PARAMETER_TYPE_CATEGORICAL:
        return ", ".join(p.categorical_values)
    parts = []
    if p.HasField("bounds"):
        parts.append(f"[{fmt(p.bounds.min)}, {fmt(p.bounds.max)}]")
    if p.grid:
        parts.append("grid " + ", ".join(fmt(g) for g in p.grid))
    if p.transformation == experiment_pb2.TRANSFORMATION_LOG:
        parts.append("log")
    return "  ".join(parts)


def _conditions(p: experiment_pb2.Parameter) -> str:
    return "; ".join(f"{k} in {{{', '.join(v.values)}}}" for k, v in sorted(p.conditions.items()))


def _constraint(c: experiment_pb2.LinearConstraint) -> str:
    terms = " + ".join(f"{fmt(t.weight)}*{t.name}" for t in c.terms).replace("+ -", "- ")
    op = "<=" if c.type == experiment_pb2.LINEAR_CONSTRAINT_TYPE_LESS_THAN else ">="
    return f"{terms} {op} {fmt(c.threshold)}"


def _show(args: argparse.Namespace) -> None:
    exp = Client(args).experiment(args.experiment)
    if args.json:
        print(json.dumps(_as_json(exp), indent=2))
        return
    progress = exp.progress
    budget = exp.observation_budget if exp.HasField("observation_budget") else None
    lines = [
        f"experiment {exp.id}: {cell_text(exp.name)}",
        f"  project             {exp.project or '-'}",
        f"  type                {type_name(exp.type)}",
        f"  state               {state_name(exp.state)}",
        f"  created             {exp.create_time.ToDatetime():%Y-%m-%d %H:%M:%S} UTC",
        f"  budget              {budget if budget is not None else '-'}",
        f"  parallel bandwidth  {exp.parallel_bandwidth or 1}",
        f"  observations        {progress.observation_count}"
        f" ({progress.failed_observation_count} failed)",
        f"  open suggestions    {progress.open_suggestion_count}",
    ]
    if exp.num_solutions > 1:
        lines.append(f"  solutions sought    {exp.num_solutions}")
    print("\n".join(lines))
    print()
    print(
        table(
            ["PARAMETER", "TYPE", "VALUES", "ACTIVE WHEN"],
            [
                [p.name, PARAMETER_TYPES.get(p.type, "?"), _bounds(p), _conditions(p) or "always"]
                for p in exp.parameters
            ],
            shrink=(0, 2, 3),
        )
    )
    if exp.conditionals:
        print()
        print(
            table(
                ["CONDITIONAL", "VALUES"],
                [[c.name, ", ".join(c.values)] for c in exp.conditionals],
                shrink=(0, 1),
            )
        )
    print()
    print(
        table(
            ["METRIC", "OBJECTIVE", "STRATEGY", "THRESHOLD"],
            [
                [
                    m.name,
                    "minimize" if minimizes(m) else "maximize",
                    STRATEGIES[m.strategy],
                    fmt(m.threshold) if m.HasField("threshold") else "-",
                ]
                for m in exp.metrics
            ],
            shrink=(0,),
        )
    )
    if exp.linear_constraints:
        print()
        print("linear constraints:")
        for c in exp.linear_constraints:
            print(f"  {_constraint(c)}")
    if progress.HasField("best_observation"):
        print()
        print("best so far:")
        print(_observation_block(progress.best_observation))


# ---------------------------------------------------------------- best


def _observation_block(obs: observation_pb2.Observation) -> str:
    values = ", ".join(f"{v.name} = {fmt(v.value)}" for v in obs.values)
    rows = [[name, fmt(value_of(v))] for name, v in sorted(obs.assignments.items())]
    body = table(["  " + "PARAMETER", "VALUE"], [["  " + r[0], r[1]] for r in rows], shrink=(0,))
    return f"  observation {obs.id}: {values}\n{body}"


def _best(args: argparse.Namespace) -> None:
    client = Client(args)
    reply = client.call(
        "GetBestAssignments", pb.GetBestAssignmentsRequest(experiment_id=args.experiment)
    )
    if args.json:
        print(json.dumps([_as_json(o) for o in reply.observations], indent=2))
        return
    if not reply.observations:
        print(f"no best assignments yet: {reply.explanation or 'no observations'}")
        return
    count = len(reply.observations)
    print(f"{count} best observation{'s' if count > 1 else ''} of experiment {args.experiment}:")
    for obs in reply.observations:
        print(_observation_block(obs))


# ---------------------------------------------------------------- archive, delete


def _archive(args: argparse.Namespace) -> None:
    state = (
        experiment_pb2.EXPERIMENT_STATE_ACTIVE
        if args.undo
        else experiment_pb2.EXPERIMENT_STATE_ARCHIVED
    )
    client = Client(args)
    if client.experiment(args.experiment).state == experiment_pb2.EXPERIMENT_STATE_DELETED:
        # archiving (or its undo) would quietly restore it
        raise CommandError(f"experiment {args.experiment} is deleted; archive does not apply")
    reply = client.call(
        "UpdateExperiment",
        pb.UpdateExperimentRequest(
            experiment=experiment_pb2.Experiment(id=args.experiment, state=state),
            update_mask=field_mask_pb2.FieldMask(paths=["state"]),
            request_id=new_request_id(),
        ),
    )
    print(f"experiment {reply.experiment.id} is {state_name(reply.experiment.state)}")


def _delete(args: argparse.Namespace) -> None:
    client = Client(args)
    exp = client.experiment(args.experiment)
    count = exp.progress.observation_count
    what = f"experiment {exp.id} ({cell_text(exp.name)!r}) with {count} observations"
    if not args.yes and not confirm(f"delete {what}?"):
        raise CommandError(f"not deleted: confirm on a terminal, or pass --yes ({what})")
    client.call(
        "DeleteExperiment",
        pb.DeleteExperimentRequest(id=args.experiment, request_id=new_request_id()),
    )
    print(f"deleted {what}")
