"""Ids and page tokens are parsed strictly at the edge: a malformed one is
INVALID_ARGUMENT naming the field, a well-formed unknown one NOT_FOUND."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import field_mask_pb2

from optserve.domain.ids import parse_id
from optserve.v1 import experiment_pb2, observation_pb2
from optserve.v1 import service_pb2 as pb

from .helpers import create, double, observe, suggest, violations

# Not ids: other digit scripts, signs, spaces, leading zeros, beyond int64.
MALFORMED = {
    "fullwidth-one": "\uff11",
    "arabic-indic-three": "\u0663",
    "superscript-two": "\u00b2",
    "negative": "-1",
    "plus": "+1",
    "space": " 1",
    "decimal": "1.0",
    "exponent": "1e3",
    "hex": "0x1",
    "leading-zero": "01",
    "int64-plus-one": str(2**63),
    "thirty-digits": "9" * 30,
    "four-hundred-digits": "9" * 400,
    "letters": "abc",
}
# Well-formed, naming nothing.
UNKNOWN = {"int64-max": str(2**63 - 1), "zero": "0", "large": "424242424242"}


@dataclass
class Ids:
    experiment: str
    suggestion: str
    observation: str


@pytest.fixture(scope="module")
def known(stub) -> Ids:
    exp = create(stub, parameters=[double("x")])
    first, second = suggest(stub, exp.id, count=2)
    obs = observe(stub, exp.id, suggestionId=first.id, values=[{"name": "value", "value": 1}])
    return Ids(exp.id, second.id, obs.id)


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


# (call site, field named in the error, call(stub, ids, value)): each puts ``value``
# in one id field and real ids in the others.
SITES: list[tuple[str, str, Callable]] = [
    ("GetExperiment", "id", lambda s, k, v: s.GetExperiment(pb.GetExperimentRequest(id=v))),
    (
        "UpdateExperiment",
        "experiment.id",
        lambda s, k, v: s.UpdateExperiment(
            pb.UpdateExperimentRequest(
                experiment=experiment_pb2.Experiment(id=v, name="n"), update_mask=_mask("name")
            )
        ),
    ),
    (
        "DeleteExperiment",
        "id",
        lambda s, k, v: s.DeleteExperiment(pb.DeleteExperimentRequest(id=v)),
    ),
    (
        "CreateSuggestions",
        "experiment_id",
        lambda s, k, v: s.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=v)),
    ),
    (
        "GetSuggestion.experiment_id",
        "experiment_id",
        lambda s, k, v: s.GetSuggestion(pb.GetSuggestionRequest(experiment_id=v, id=k.suggestion)),
    ),
    (
        "GetSuggestion.id",
        "id",
        lambda s, k, v: s.GetSuggestion(pb.GetSuggestionRequest(experiment_id=k.experiment, id=v)),
    ),
    (
        "ListSuggestions",
        "experiment_id",
        lambda s, k, v: s.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=v)),
    ),
    (
        "DeleteSuggestion.experiment_id",
        "experiment_id",
        lambda s, k, v: s.DeleteSuggestion(
            pb.DeleteSuggestionRequest(experiment_id=v, id=k.suggestion)
        ),
    ),
    (
        "DeleteSuggestion.id",
        "id",
        lambda s, k, v: s.DeleteSuggestion(
            pb.DeleteSuggestionRequest(experiment_id=k.experiment, id=v)
        ),
    ),
    (
        "RenewSuggestionLease.experiment_id",
        "experiment_id",
        lambda s, k, v: s.RenewSuggestionLease(
            pb.RenewSuggestionLeaseRequest(experiment_id=v, id=k.suggestion)
        ),
    ),
    (
        "RenewSuggestionLease.id",
        "id",
        lambda s, k, v: s.RenewSuggestionLease(
            pb.RenewSuggestionLeaseRequest(experiment_id=k.experiment, id=v)
        ),
    ),
    (
        "CreateObservation.experiment_id",
        "experiment_id",
        lambda s, k, v: s.CreateObservation(
            pb.CreateObservationRequest(
                experiment_id=v,
                observation=observation_pb2.Observation(suggestion_id=k.suggestion, failed=True),
            )
        ),
    ),
    (
        "CreateObservation.suggestion_id",
        "observation.suggestion_id",
        lambda s, k, v: s.CreateObservation(
            pb.CreateObservationRequest(
                experiment_id=k.experiment,
                observation=observation_pb2.Observation(suggestion_id=v, failed=True),
            )
        ),
    ),
    (
        "GetObservation.experiment_id",
        "experiment_id",
        lambda s, k, v: s.GetObservation(
            pb.GetObservationRequest(experiment_id=v, id=k.observation)
        ),
    ),
    (
        "GetObservation.id",
        "id",
        lambda s, k, v: s.GetObservation(
            pb.GetObservationRequest(experiment_id=k.experiment, id=v)
        ),
    ),
    (
        "ListObservations",
        "experiment_id",
        lambda s, k, v: s.ListObservations(pb.ListObservationsRequest(experiment_id=v)),
    ),
    (
        "UpdateObservation.experiment_id",
        "experiment_id",
        lambda s, k, v: s.UpdateObservation(
            pb.UpdateObservationRequest(
                experiment_id=v,
                observation=observation_pb2.Observation(id=k.observation),
                update_mask=_mask("metadata"),
            )
        ),
    ),
    (
        "UpdateObservation.id",
        "observation.id",
        lambda s, k, v: s.UpdateObservation(
            pb.UpdateObservationRequest(
                experiment_id=k.experiment,
                observation=observation_pb2.Observation(id=v),
                update_mask=_mask("metadata"),
            )
        ),
    ),
    (
        "DeleteObservation.experiment_id",
        "experiment_id",
        lambda s, k, v: s.DeleteObservation(
            pb.DeleteObservationRequest(experiment_id=v, id=k.observation)
        ),
    ),
    (
        "DeleteObservation.id",
        "id",
        lambda s, k, v: s.DeleteObservation(
            pb.DeleteObservationRequest(experiment_id=k.experiment, id=v)
        ),
    ),
    (
        "GetBestAssignments",
        "experiment_id",
        lambda s, k, v: s.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=v)),
    ),
]
SITE_IDS = [site[0] for site in SITES]


def _code(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.mark.parametrize("value", list(MALFORMED.values()), ids=list(MALFORMED))
@pytest.mark.parametrize(("site", "field", "call"), SITES, ids=SITE_IDS)
def test_malformed_ids_are_invalid(stub, known, site, field, call, value):
    error = _code(lambda: call(stub, known, value))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (site, error)
    assert [f for f, d in violations(error) if "not an id" in d] == [field]


@pytest.mark.parametrize("value", list(UNKNOWN.values()), ids=list(UNKNOWN))
@pytest.mark.parametrize(("site", "field", "call"), SITES, ids=SITE_IDS)
def test_unknown_ids_are_not_found(stub, known, site, field, call, value):
    assert _code(lambda: call(stub, known, value)).code() is grpc.StatusCode.NOT_FOUND, site


# An observation may come without a suggestion_id (with assignments instead).
REQUIRED = [site for site in SITES if site[1] != "observation.suggestion_id"]


@pytest.mark.parametrize(("site", "field", "call"), REQUIRED, ids=[s[0] for s in REQUIRED])
def test_empty_ids_are_required(stub, known, site, field, call):
    error = _code(lambda: call(stub, known, ""))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (field, "required: an id") in violations(error)


def test_a_fullwidth_digit_does_not_resolve_to_an_experiment(stub, known):
    assert stub.GetExperiment(pb.GetExperimentRequest(id=known.experiment)).experiment.id
    spelled = "".join(chr(0xFF10 + int(d)) for d in known.experiment)
    error = _code(lambda: stub.GetExperiment(pb.GetExperimentRequest(id=spelled)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_parse_id():
    assert parse_id("0") == 0 and parse_id("7") == 7
    assert parse_id(str(2**63 - 1)) == 2**63 - 1
    for bad in ["", "07", str(2**63), "\uff17", "7 ", "-0", "1_000"]:
        assert parse_id(bad) is None, bad


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


BAD_TOKENS = {
    "four-hundred-digits": _token("after:" + "9" * 400),
    "beyond-int64": _token(f"after:{2**63}"),
    "negative": _token("after:-1"),
    "leading-zero": _token("after:01"),
    "fullwidth": _token("after:\uff11"),
    "other-kind": _token("before:1"),
    "not-base64": "%%%",
    "long": "A" * 10_000,
}
LISTS = {
    "experiments": lambda s, k, t: s.ListExperiments(pb.ListExperimentsRequest(page_token=t)),
    "suggestions": lambda s, k, t: s.ListSuggestions(
        pb.ListSuggestionsRequest(experiment_id=k.experiment, page_token=t)
    ),
    "observations": lambda s, k, t: s.ListObservations(
        pb.ListObservationsRequest(experiment_id=k.experiment, page_token=t)
    ),
}


@pytest.mark.parametrize("token", list(BAD_TOKENS.values()), ids=list(BAD_TOKENS))
@pytest.mark.parametrize("call", list(LISTS.values()), ids=list(LISTS))
def test_bad_page_tokens_are_invalid(stub, known, call, token):
    error = _code(lambda: call(stub, known, token))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(error)] == ["page_token"]


def test_page_tokens_round_trip(stub, known):
    first = stub.ListSuggestions(
        pb.ListSuggestionsRequest(experiment_id=known.experiment, page_size=1)
    )
    assert len(first.suggestions) == 1 and first.next_page_token
    second = stub.ListSuggestions(
        pb.ListSuggestionsRequest(
            experiment_id=known.experiment, page_size=1, page_token=first.next_page_token
        )
    )
    assert [s.id for s in second.suggestions] == [known.suggestion]
    assert not second.next_page_token
