"""Helpers to build requests from compact dicts (proto JSON) and read errors."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from optserve.v1 import experiment_pb2, observation_pb2
from optserve.v1 import service_pb2 as pb


def double(name: str, lo: float = 0.0, hi: float = 1.0, **extra: Any) -> dict:
    return {
        "name": name,
        "type": "PARAMETER_TYPE_DOUBLE",
        "bounds": {"min": lo, "max": hi},
        **extra,
    }


def integer(name: str, lo: int = 0, hi: int = 10, **extra: Any) -> dict:
    return {"name": name, "type": "PARAMETER_TYPE_INT", "bounds": {"min": lo, "max": hi}, **extra}


def categorical(name: str, values: list[str], **extra: Any) -> dict:
    return {
        "name": name,
        "type": "PARAMETER_TYPE_CATEGORICAL",
        "categoricalValues": values,
        **extra,
    }


def experiment(**fields: Any) -> experiment_pb2.Experiment:
    doc = {"name": "test", "parameters": [double("x")], "metrics": [{"name": "value"}]}
    doc.update(fields)
    return json_format.ParseDict(doc, experiment_pb2.Experiment())


def create(stub, **fields: Any) -> experiment_pb2.Experiment:
    return stub.CreateExperiment(
        pb.CreateExperimentRequest(experiment=experiment(**fields))
    ).experiment


def suggest(stub, experiment_id: str, count: int = 1) -> list:
    req = pb.CreateSuggestionsRequest(experiment_id=experiment_id, count=count)
    return list(stub.CreateSuggestions(req).suggestions)


def observe(stub, experiment_id: str, **fields: Any) -> observation_pb2.Observation:
    obs = json_format.ParseDict(fields, observation_pb2.Observation())
    req = pb.CreateObservationRequest(experiment_id=experiment_id, observation=obs)
    return stub.CreateObservation(req).observation


def plain(assignments: Any) -> dict[str, Any]:
    """Proto assignments as a plain dict of Python values."""
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in assignments.items()}


def violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """(field, description) pairs of a BadRequest detail."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    out = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out += [(v.field, v.description) for v in bad.field_violations]
    return out
