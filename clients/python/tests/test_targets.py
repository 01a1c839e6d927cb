"""Several targets: how they become one gRPC target with round-robin balancing."""

from __future__ import annotations

import json

import pytest

from optserve_client import Connection
from optserve_client._targets import ROUND_ROBIN, channel_target


@pytest.mark.parametrize(
    "target",
    ["localhost:50051", "dns:///optserve.internal:50051", "ipv4:10.0.0.1:1,10.0.0.2:2", "unix:/s"],
)
def test_single_and_grpc_targets_pass_unchanged(target):
    assert channel_target(target) == target


def test_a_comma_separated_list_becomes_one_address_list():
    assert channel_target("10.0.0.5:50051, 10.0.0.6:50052,") == "ipv4:10.0.0.5:50051,10.0.0.6:50052"
    assert channel_target("[::1]:5,[fe80::1]:6") == "ipv6:[::1]:5,[fe80::1]:6"
    # names are resolved; duplicates kept once
    assert channel_target("localhost:7,127.0.0.1:7") == "ipv4:127.0.0.1:7"


@pytest.mark.parametrize("target", ["a:1,b", "a:1,:2", "10.0.0.1:1,10.0.0.2:99999", ",,"])
def test_malformed_lists_are_refused(target):
    with pytest.raises(ValueError):
        channel_target(target)


def test_servers_on_different_ip_versions_are_refused():
    with pytest.raises(ValueError, match="dns:///"):
        channel_target("10.0.0.1:1,[::1]:2")


def test_the_connection_balances_round_robin(monkeypatch):
    monkeypatch.setenv("OPTSERVE_TARGET", "127.0.0.1:1,127.0.0.1:2")
    with Connection() as conn:
        assert conn.target == "127.0.0.1:1,127.0.0.1:2"
    assert json.loads(ROUND_ROBIN) == {"loadBalancingConfig": [{"round_robin": {}}]}


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="cannot resolve"):
        channel_target("localhost:1,no-such-host.invalid:2")
