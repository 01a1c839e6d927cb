"""TLS and mutual TLS, against a real gRPC server in the test process with
certificates made for the session (conftest.py: ``certificates``)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from optserve_client import ApiError, Connection, RetryPolicy
from optserve_client._proto.optserve.v1 import experiment_pb2, service_pb2, service_pb2_grpc


class _Peers(service_pb2_grpc.OptimizationServiceServicer):
    """Answers GetExperiment with the caller's TLS identity as the experiment's name."""

    def GetExperiment(self, request, context):
        auth = context.auth_context()
        security = b"".join(auth.get("transport_security_type", [])).decode()
        peer = b"".join(auth.get("x509_common_name", [])).decode()
        return service_pb2.GetExperimentResponse(
            experiment=experiment_pb2.Experiment(id=request.id, name=f"{security}:{peer}")
        )


def _serve(certificates: Any, require_client_auth: bool) -> tuple[grpc.Server, int]:
    credentials = grpc.ssl_server_credentials(
        [(certificates.server_key.read_bytes(), certificates.server_cert.read_bytes())],
        root_certificates=certificates.ca.read_bytes() if require_client_auth else None,
        require_client_auth=require_client_auth,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    service_pb2_grpc.add_OptimizationServiceServicer_to_server(_Peers(), server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, port


@pytest.fixture(scope="module")
def tls_port(certificates) -> Iterator[int]:
    server, port = _serve(certificates, require_client_auth=False)
    yield port
    server.stop(None).wait()


@pytest.fixture(scope="module")
def mtls_port(certificates) -> Iterator[int]:
    server, port = _serve(certificates, require_client_auth=True)
    yield port
    server.stop(None).wait()


@pytest.fixture(autouse=True)
def _no_tls_environment(monkeypatch) -> None:
    for name in (
        "OPTSERVE_TLS",
        "OPTSERVE_TLS_CA",
        "OPTSERVE_TLS_CERT",
        "OPTSERVE_TLS_KEY",
        "OPTSERVE_TLS_SERVER_NAME",
    ):
        monkeypatch.delenv(name, raising=False)


def _name(port: int, **kwargs: Any) -> str:
    kwargs.setdefault("tls_server_name", "localhost")
    with Connection(f"127.0.0.1:{port}", timeout=10, retry=RetryPolicy.never(), **kwargs) as c:
        return c.get_experiment("1").name


def _refused(port: int, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        _name(port, **kwargs)
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    return info.value


def test_tls_with_the_test_ca(certificates, tls_port) -> None:
    assert _name(tls_port, tls_ca=certificates.ca) == "ssl:"
    # PEM text works as well as a path.
    assert _name(tls_port, tls_ca=certificates.ca.read_bytes()) == "ssl:"
    assert _name(tls_port, tls_ca=certificates.ca.read_text()) == "ssl:"


def test_the_server_certificate_is_verified(certificates, tls_port) -> None:
    _refused(tls_port, tls_ca=certificates.other_ca)
    # The certificate names localhost, not 127.0.0.1.
    _refused(tls_port, tls_ca=certificates.ca, tls_server_name=None)
    # A plaintext client cannot talk to a TLS server.
    _refused(tls_port, tls_server_name=None)


def test_mutual_tls(certificates, mtls_port) -> None:
    client = dict(tls_cert=certificates.client_cert, tls_key=certificates.client_key)
    assert _name(mtls_port, tls_ca=certificates.ca, **client) == "ssl:optserve test client"
    _refused(mtls_port, tls_ca=certificates.ca)


def test_tls_from_the_environment(certificates, mtls_port, monkeypatch) -> None:
    monkeypatch.setenv("OPTSERVE_TLS_CA", str(certificates.ca))
    monkeypatch.setenv("OPTSERVE_TLS_CERT", str(certificates.client_cert))
    monkeypatch.setenv("OPTSERVE_TLS_KEY", str(certificates.client_key))
    monkeypatch.setenv("OPTSERVE_TLS_SERVER_NAME", "localhost")
    assert _name(mtls_port, tls_server_name=None) == "ssl:optserve test client"
    with Connection(f"127.0.0.1:{mtls_port}") as conn:
        assert conn.tls and "tls" in repr(conn)
    # An explicit tls=False wins over the environment's certificates.
    with Connection(f"127.0.0.1:{mtls_port}", tls=False) as conn:
        assert not conn.tls
    monkeypatch.setenv("OPTSERVE_TLS", "0")
    with Connection(f"127.0.0.1:{mtls_port}") as conn:
        assert not conn.tls


def test_tls_flag_alone_uses_the_system_roots(tls_port, monkeypatch) -> None:
    monkeypatch.setenv("OPTSERVE_TLS", "1")
    with Connection(f"127.0.0.1:{tls_port}") as conn:
        assert conn.tls
    # The system's roots do not know the test CA.
    _refused(tls_port, tls=True)


def test_tls_options_are_checked_before_connecting(certificates, tmp_path) -> None:
    with pytest.raises(ValueError, match="private key"):
        Connection("127.0.0.1:1", tls_cert=certificates.client_cert)
    with pytest.raises(ValueError, match="cannot read"):
        Connection("127.0.0.1:1", tls_ca=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="tls=False"):
        Connection("127.0.0.1:1", tls=False, tls_ca=certificates.ca)
    with pytest.raises(ValueError, match="not both"):
        Connection("127.0.0.1:1", credentials=grpc.ssl_channel_credentials(), tls=True)


def test_the_real_server_over_mutual_tls(certificates, tls_server) -> None:
    token = "tls-test-token"  # conftest.SERVER_TOKEN
    tls = dict(
        tls_ca=certificates.ca,
        tls_cert=certificates.client_cert,
        tls_key=certificates.client_key,
        tls_server_name="localhost",
    )
    with Connection(tls_server.target, token=token, **tls) as conn:
        experiment = conn.create_experiment(
            name="over TLS",
            parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
            metrics=[dict(name="m")],
        )
        suggestion = conn.create_suggestion(experiment.id)
        conn.create_observation(experiment.id, suggestion=suggestion.id, values={"m": 1.0})
        assert conn.get_experiment(experiment.id).progress.observation_count == 1
    never = RetryPolicy.never()
    with Connection(tls_server.target, token="wrong", retry=never, **tls) as conn:
        with pytest.raises(ApiError) as info:
            conn.get_experiment(experiment.id)
        assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
    # Without a client certificate, or without TLS, no call gets through.
    for settings in (
        dict(tls_ca=certificates.ca, tls_server_name="localhost"),
        dict(tls=False),
    ):
        with Connection(tls_server.target, token=token, retry=never, **settings) as conn:
            with pytest.raises(ApiError) as info:
                conn.get_experiment(experiment.id)
            assert info.value.code is grpc.StatusCode.UNAVAILABLE
