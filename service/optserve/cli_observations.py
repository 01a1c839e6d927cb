"""`optserve observations export|import`: observations as CSV or JSON, and a warm start of
an experiment from past evaluations in CSV.

CSV columns: one per parameter (and conditional) named as it, one per metric named
as it, ``stddev:METRIC`` for a metric's standard deviation, ``failed``, ``metadata``
(a JSON object), and on export ``id``, ``suggestion_id`` and ``create_time``, which an
import ignores. A name that is also a column of another kind, or that starts with
``param:``, ``metric:`` or ``stddev:``, is written ``param:NAME`` / ``metric:NAME``.

An import checks every row against the experiment with the server's own rules before
it writes any, then stores the rows in batches (BatchCreateObservations: each batch
all or none; a file of up to 2,500 rows is one batch). Each batch carries a request
id made from the experiment, its position and its rows, so that running the same
import again (after a failure part way) stores each row once.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from .cli_client import (
    Client,
    CommandError,
    Progress,
    describe_rpc_error,
    subcommand,
    value_of,
)
from .domain.errors import InvalidArgument
from .domain.limits import MAX_OBSERVATIONS_PER_BATCH
from .domain.validation import map_key
from .v1 import experiment_pb2, observation_pb2
from .v1 import service_pb2 as pb

RESERVED = ("id", "suggestion_id", "create_time", "failed", "metadata")
IGNORED_ON_IMPORT = ("id", "suggestion_id", "create_time")
PREFIXES = ("param:", "metric:", "stddev:")
TRUE = ("true", "1", "yes")
FALSE = ("", "false", "0", "no")
MAX_REPORTED_ERRORS = 50
# A batch's request stays well below gRPC's 4 MiB message limit.
MAX_BATCH_BYTES = 3 * 1024 * 1024


def add_parser(sub: argparse._SubParsersAction) -> None:
    observations = sub.add_parser(
        "observations",
        help="export observations (CSV, JSON); import past evaluations from CSV",
        description=__doc__.split("\n\n", 1)[1],
        epilog="examples:\n"
        "  optserve observations export 12 --format csv -o runs.csv\n"
        "  optserve observations import 13 runs.csv\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = observations.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = subcommand(
        actions,
        "export",
        "write an experiment's observations as CSV or JSON, oldest first",
        "  optserve observations export 12 > runs.csv\n"
        "  optserve observations export 12 --format json -o runs.json\n",
        _export,
    )
    export.add_argument("experiment", help="experiment id")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("-o", "--output", type=Path, help="file to write (default, or -: stdout)")

    imports = subcommand(
        actions,
        "import",
        "add past evaluations from a CSV file to an experiment (a warm start)",
        "  optserve observations import 13 runs.csv\n"
        "  optserve observations import 13 runs.csv --dry-run\n"
        "  a file written by hand, for parameters x and n and the metric loss:\n"
        "    x,n,loss,failed\n"
        "    0.5,3,1.25,\n"
        "    0.1,7,,true\n"
        "    0.9,1,0.75,\n"
        "  (a row without a value for an optimized metric is a failed evaluation)\n",
        _import,
        description="Add past evaluations from a CSV file (header: parameter and metric"
        " names; the format of `optserve observations export`) as observations with"
        " explicit assignments. Every row is checked against the experiment first: bad"
        " rows are reported with their line numbers and then nothing is written. The rows"
        " are then stored in batches, each all or none (a file of up to"
        f" {MAX_OBSERVATIONS_PER_BATCH} rows is one batch), with request ids made from"
        " their content, so that a repeated import stores each row once. Experiments with"
        " conditionals accept no explicit assignments, so they cannot import.",
    )
    imports.add_argument("experiment", help="experiment id")
    imports.add_argument("file", type=Path, help="CSV file ('-' for stdin)")
    imports.add_argument("--dry-run", action="store_true", help="check every row, write none")
    imports.add_argument(
        "--batch-size",
        type=int,
        default=MAX_OBSERVATIONS_PER_BATCH,
        help=f"rows stored together, all or none (default and at most"
        f" {MAX_OBSERVATIONS_PER_BATCH}: a file of that many rows or fewer is stored whole"
        " or not at all)",
    )


# ---------------------------------------------------------------- export


def _names(exp: experiment_pb2.Experiment) -> tuple[list[str], list[str]]:
    space = [p.name for p in exp.parameters] + [c.name for c in exp.conditionals]
    return space, [m.name for m in exp.metrics]


def _column(name: str, kind: str, others: set[str]) -> str:
    if name in others or name in RESERVED or name.startswith(PREFIXES):
        return f"{kind}:{name}"
    return name


def _iso(ts: Any) -> str:
    return ts.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same double
    return str(value)


def export_csv(exp: experiment_pb2.Experiment, observations: list[Any], out: Any) -> None:
    space, metrics = _names(exp)
    with_stddev = [m for m in metrics if any(_stddev(o, m) is not None for o in observations)]
    with_metadata = any(len(o.metadata.fields) for o in observations)
    header = ["id", "suggestion_id", "create_time", "failed"]
    header += [_column(n, "param", set(metrics)) for n in space]
    header += [_column(n, "metric", set(space)) for n in metrics]
    header += [f"stddev:{m}" for m in with_stddev]
    header += ["metadata"] if with_metadata else []
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for o in observations:
        values = {v.name: v.value for v in o.values}
        row = [o.id, o.suggestion_id, _iso(o.create_time), "true" if o.failed else "false"]
        row += [
            _csv_cell(value_of(o.assignments[n]) if n in o.assignments else None) for n in space
        ]
        row += [_csv_cell(values.get(m)) for m in metrics]
        row += [_csv_cell(_stddev(o, m)) for m in with_stddev]
        if with_metadata:
            metadata = json_format.MessageToDict(o.metadata)
            row.append(json.dumps(metadata, ensure_ascii=False) if metadata else "")
        writer.writerow(row)


def _stddev(o: observation_pb2.Observation, metric: str) -> float | None:
    for v in o.values:
        if v.name == metric and v.HasField("value_stddev"):
            return v.value_stddev
    return None


def export_json(observations: list[Any]) -> list[dict[str, Any]]:
    out = []
    for o in observations:
        values = []
        for v in o.values:
            entry: dict[str, Any] = {"name": v.name, "value": v.value}
            if v.HasField("value_stddev"):
                entry["value_stddev"] = v.value_stddev
            values.append(entry)
        out.append(
            {
                "id": o.id,
                "suggestion_id": o.suggestion_id or None,
                "create_time": _iso(o.create_time),
                "failed": o.failed,
                "assignments": {k: value_of(v) for k, v in sorted(o.assignments.items())},
                "values": values,
                "metadata": json_format.MessageToDict(o.metadata),
            }
        )
    return out


def _export(args: argparse.Namespace) -> None:
    client = Client(args)
    exp = client.experiment(args.experiment)
    observations = client.observations(args.experiment)
    buffer = io.StringIO()
    if args.format == "csv":
        export_csv(exp, observations, buffer)
    else:
        buffer.write(json.dumps(export_json(observations), indent=2, ensure_ascii=False) + "\n")
    if args.output is None or str(args.output) == "-":
        sys.stdout.write(buffer.getvalue())
        return
    try:
        args.output.write_text(buffer.getvalue(), encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot write {args.output}: {error.strerror}") from None
    print(f"{len(observations)} observations written to {args.output}", file=sys.stderr)


# ---------------------------------------------------------------- import


@dataclass
class Columns:
    """What each column of the header means for one experiment."""

    parameters: dict[int, experiment_pb2.Parameter] = field(default_factory=dict)
    metrics: dict[int, str] = field(default_factory=dict)
    stddevs: dict[int, str] = field(default_factory=dict)
    failed: int | None = None
    metadata: int | None = None


@dataclass
class Row:
    line: int
    observation: observation_pb2.Observation


class BadRows(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def read_header(header: list[str], exp: experiment_pb2.Experiment) -> Columns:
    parameters = {p.name: p for p in exp.parameters}
    conditionals = {c.name for c in exp.conditionals}
    metrics = {m.name for m in exp.metrics}
    columns, errors, seen = Columns(), [], set()
    for i, raw in enumerate(header):
        name = raw.strip()
        where = f"line 1, column {i + 1} ({raw!r})"
        if name in seen:
            errors.append(f"{where}: a second column of this name")
            continue
        seen.add(name)
        kind, _, rest = name.partition(":")
        if name.startswith(PREFIXES):
            target = rest
        else:
            kind, target = "", name
        if kind == "stddev":
            if target in metrics:
                columns.stddevs[i] = target
            else:
                errors.append(f"{where}: {target!r} is not a metric of the experiment")
            continue
        is_param = target in parameters or target in conditionals
        is_metric = target in metrics
        if kind == "param" or (not kind and is_param and not is_metric):
            if target in parameters:
                columns.parameters[i] = parameters[target]
            elif target in conditionals:
                errors.append(
                    f"{where}: {target!r} is a conditional; experiments with conditionals"
                    " accept no explicit assignments"
                )
            else:
                errors.append(f"{where}: {target!r} is not a parameter of the experiment")
        elif kind == "metric" or (not kind and is_metric and not is_param):
            if is_metric:
                columns.metrics[i] = target
            else:
                errors.append(f"{where}: {target!r} is not a metric of the experiment")
        elif is_param and is_metric:
            errors.append(
                f"{where}: {target!r} names a parameter and a metric: write param:{target}"
                f" or metric:{target}"
            )
        elif name == "failed":
            columns.failed = i
        elif name == "metadata":
            columns.metadata = i
        elif name in IGNORED_ON_IMPORT:
            pass
        else:
            errors.append(
                f"{where}: not a parameter or metric of the experiment, nor one of"
                f" {', '.join(RESERVED)}"
            )
    missing = [n for n in parameters if n not in {p.name for p in columns.parameters.values()}]
    if missing:
        errors.append(f"line 1: no column for parameter(s) {', '.join(map(repr, missing))}")
    if errors:
        raise BadRows(errors)
    return columns


def _number(text: str, integral: bool) -> float | int:
    text = text.strip()
    if integral:
        try:
            return int(text)
        except ValueError:
            pass
    number = float(text)  # ValueError names the text
    if integral and math.isfinite(number) and number == round(number):
        return int(number)
    return number


def parse_row(
    cells: list[str], line: int, columns: Columns
) -> tuple[observation_pb2.Observation, list[str]]:
    """The observation a row describes, and what is wrong with its cells."""
    obs = observation_pb2.Observation()
    errors: list[str] = []
    for i, p in columns.parameters.items():
        text = cells[i]
        if text == "":
            continue  # reported by validation as a missing value
        slot = obs.assignments[p.name]
        if p.type == experiment_pb2.PARAMETER_TYPE_CATEGORICAL:
            slot.string_value = text
            continue
        try:
            number = _number(text, p.type == experiment_pb2.PARAMETER_TYPE_INT)
        except ValueError:
            errors.append(f"line {line}, column {p.name}: {text!r} is not a number")
            continue
        if isinstance(number, int):
            slot.int_value = number
        else:
            slot.double_value = number
    stddevs = {columns.stddevs[i]: cells[i] for i in columns.stddevs if cells[i].strip()}
    for i, metric in columns.metrics.items():
        text = cells[i].strip()
        if not text:
            if metric in stddevs:
                errors.append(f"line {line}, column stddev:{metric}: a stddev without a value")
            continue
        value = obs.values.add(name=metric)
        try:
            value.value = float(text)
        except ValueError as error:
            errors.append(f"line {line}, column {metric}: {error}")
        if metric in stddevs:
            try:
                value.value_stddev = float(stddevs[metric])
            except ValueError as error:
                errors.append(f"line {line}, column stddev:{metric}: {error}")
    if columns.failed is not None:
        flag = cells[columns.failed].strip().lower()
        if flag in TRUE:
            obs.failed = True
        elif flag not in FALSE:
            errors.append(f"line {line}, column failed: {flag!r} is not true or false")
    if columns.metadata is not None and cells[columns.metadata].strip():
        try:
            metadata = json.loads(cells[columns.metadata])
            if not isinstance(metadata, dict):
                raise ValueError("a JSON object is needed")
            json_format.ParseDict(metadata, obs.metadata)
        except (ValueError, json_format.ParseError) as error:
            errors.append(f"line {line}, column metadata: not a JSON object ({error})")
    return obs, errors


def _violation_column(path: str, obs: observation_pb2.Observation) -> str:
    """The column a field violation is about, for the report."""
    for name in obs.assignments:
        if path == f"observation.assignments{map_key(name)}":
            return f", column {name}"
    for i, v in enumerate(obs.values):
        if path.startswith(f"observation.values[{i}]"):
            return f", column {v.name}"
    if path.startswith("observation.assignments"):
        suffix = path[len("observation.assignments") :]
        name = suffix.strip('[]"')
        return f", column {name}" if name else ""
    if path.startswith("observation.metadata"):
        return ", column metadata"
    if path == "observation.values":
        return ""
    return f" ({path})" if path and path != "observation" else ""


def check_row(
    obs: observation_pb2.Observation, line: int, domain_exp: Any, experiment_id: str
) -> list[str]:
    """The server's own checks of an observation with explicit assignments."""
    from .api import converters
    from .domain import validation

    try:
        domain_obs = converters.observation_from_proto(obs, experiment_id)
        validation.validate_observation(domain_exp, domain_obs)
    except InvalidArgument as error:
        return [
            f"line {line}{_violation_column(v.field, obs)}: {v.description}"
            for v in error.violations
        ]
    return []


@dataclass
class Batch:
    """Consecutive rows written by one BatchCreateObservations call: all or none."""

    rows: list[Row]
    request_id: str


def batches(experiment_id: str, rows: list[Row], size: int) -> list[Batch]:
    """Rows in batches of ``size`` (fewer when they would pass MAX_BATCH_BYTES), each with a
    request id made from the experiment, the batch's position and its rows: the same
    file imported again sends the same batches under the same ids, which the server
    answers from its record instead of storing them again."""
    out: list[Batch] = []
    current: list[Row] = []
    used = 0
    for row in rows:
        cost = row.observation.ByteSize() + 16
        if current and (len(current) >= size or used + cost > MAX_BATCH_BYTES):
            out.append(_batch(experiment_id, len(out), current))
            current, used = [], 0
        current.append(row)
        used += cost
    if current:
        out.append(_batch(experiment_id, len(out), current))
    return out


def _batch(experiment_id: str, position: int, rows: list[Row]) -> Batch:
    digest = hashlib.sha256(f"{experiment_id}\0{position}\0{len(rows)}\0".encode())
    for row in rows:
        digest.update(row.observation.SerializeToString(deterministic=True) + b"\0")
    return Batch(rows, f"import-{digest.hexdigest()[:40]}")


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of each CSV record, header included; blank lines skipped.

    Raises:
        BadRows: for text that is not CSV (an unclosed quote, a NUL byte).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise BadRows([f"line {start}: not CSV ({error})"]) from None
        if cells:
            yield start, cells
        start = reader.line_num + 1


def read_rows(text: str, exp: experiment_pb2.Experiment) -> list[Row]:
    """Every row of a CSV file as an observation of ``exp``.

    Raises:
        BadRows: every problem found, each with its line number.
    """
    from .api import converters

    records = _records(text)
    try:
        _, header = next(records)
    except StopIteration:
        raise BadRows(["the file is empty: a header line is needed"]) from None
    columns = read_header(header, exp)
    domain_exp = converters.experiment_from_proto(exp)
    rows: list[Row] = []
    errors: list[str] = []
    try:
        for line, cells in records:
            if len(cells) != len(header):
                errors.append(f"line {line}: {len(cells)} cells, the header has {len(header)}")
                continue
            obs, problems = parse_row(cells, line, columns)
            problems = problems or check_row(obs, line, domain_exp, exp.id)
            errors += problems
            if not problems:
                rows.append(Row(line, obs))
    except BadRows as bad:  # not CSV from here on: report it after the rows before it
        errors += bad.errors
    if errors:
        raise BadRows(errors)
    return rows


def _read_text(path: Path) -> str:
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CommandError(f"{path}: not UTF-8 text (byte {error.start})") from None


def _import(args: argparse.Namespace) -> None:
    if not 1 <= args.batch_size <= MAX_OBSERVATIONS_PER_BATCH:
        raise CommandError(f"--batch-size is 1 to {MAX_OBSERVATIONS_PER_BATCH}")
    client = Client(args)
    text = _read_text(args.file)
    exp = client.experiment(args.experiment)
    if exp.conditionals:
        raise CommandError(
            f"experiment {exp.id} has conditionals: it accepts no observations with explicit"
            " assignments, so nothing can be imported into it"
        )
    if exp.state == experiment_pb2.EXPERIMENT_STATE_ARCHIVED:
        raise CommandError(f"experiment {exp.id} is archived: it accepts no new observations")
    try:
        rows = read_rows(text, exp)
    except BadRows as bad:
        shown = bad.errors[:MAX_REPORTED_ERRORS]
        more = len(bad.errors) - len(shown)
        report = "\n".join(f"  {args.file}: {e}" for e in shown)
        if more:
            report += f"\n  ... and {more} more"
        raise CommandError(f"{args.file}: nothing imported; fix these rows:\n{report}") from None
    if args.dry_run:
        print(f"{len(rows)} rows of {args.file} are valid observations of experiment {exp.id}")
        return
    before = exp.progress.observation_count
    plan = batches(exp.id, rows, args.batch_size)
    progress = Progress(len(rows), "importing")
    done = 0
    try:
        for batch in plan:
            client.call(
                "BatchCreateObservations",
                pb.BatchCreateObservationsRequest(
                    experiment_id=exp.id,
                    observations=[row.observation for row in batch.rows],
                    request_id=batch.request_id,
                ),
            )
            done += 1
            progress.advance(len(batch.rows))
    except grpc.RpcError as error:
        progress.close()
        failed = plan[done].rows
        where = f"lines {failed[0].line}-{failed[-1].line}"
        stored = sum(len(b.rows) for b in plan[:done])
        raise CommandError(
            f"{args.file}, {where}: {describe_batch_error(error, failed)}\n"
            f"  those rows and the ones after them are not stored; {stored} of {len(rows)}"
            " rows before them are. Run the command again (after fixing a refused row):"
            " rows already stored are not written twice"
        ) from None
    progress.close()
    after = client.experiment(exp.id).progress.observation_count
    print(
        f"imported {len(rows)} rows of {args.file} into experiment {exp.id}:"
        f" {after} observations now, {before} before"
    )
    if after - before < len(rows):
        print("(rows stored by an earlier import of the same rows were not written again)")


def describe_batch_error(error: grpc.RpcError, rows: list[Row]) -> str:
    """The server's refusal, its ``observations[i]`` field paths read as line numbers."""
    text = describe_rpc_error(error, "the server")

    def line_of(match: re.Match[str]) -> str:
        i = int(match.group(1))
        return f"line {rows[i].line}" if i < len(rows) else match.group(0)

    return re.sub(r"observations\[(\d+)\]", line_of, text)
