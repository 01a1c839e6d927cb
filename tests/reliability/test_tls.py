"""TLS (--tls-cert/--tls-key) and client certificates (--tls-client-ca), with a CA made here."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from optserve.v1 import service_pb2 as pb
from optserve.v1 import service_pb2_grpc

from ..conftest import RunningServer, start_server
from .test_storage_faults import refusal


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate from another CA
    stranger_key: Path


def openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", f"{name}.key", "-out", f"{name}.pem",
        cwd=directory,
    )  # fmt: skip
    return directory / f"{name}.pem", directory / f"{name}.key"


def make_cert(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions + "\n")
    openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr",
        cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", ca[0], "-CAkey", ca[1],
        "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("neither the cryptography package nor the openssl command is available")
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "ca")
    make_cert(
        d,
        "server",
        ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
    )
    make_cert(d, "client", ca, "extendedKeyUsage=clientAuth")
    make_cert(d, "stranger", make_ca(d, "other-ca"), "extendedKeyUsage=clientAuth")
    return Pki(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        stranger_cert=d / "stranger.pem",
        stranger_key=d / "stranger.key",
    )


def tls_flags(pki: Pki, mutual: bool = False) -> list[str]:
    flags = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    return flags + (["--tls-client-ca", str(pki.ca)] if mutual else [])


def credentials(pki: Pki, cert: Path | None = None, key: Path | None = None):
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


def list_experiments(channel: grpc.Channel) -> pb.ListExperimentsResponse:
    stub = service_pb2_grpc.OptimizationServiceStub(channel)
    return stub.ListExperiments(pb.ListExperimentsRequest(), timeout=20)


def refused_connection(channel: grpc.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        list_experiments(channel)
    channel.close()
    return error.value.code()


@pytest.fixture(scope="module")
def tls_server(pki, tmp_path_factory) -> RunningServer:
    server = start_server(
        tmp_path_factory.mktemp("tls") / "optserve.db",
        *tls_flags(pki),
        credentials=credentials(pki),
    )
    yield server
    assert server.stop() == 0


def test_a_client_trusting_the_ca_is_served_over_tls(tls_server):
    channel = tls_server.channel()
    assert list(list_experiments(channel).experiments) == []
    channel.close()


def test_a_plaintext_client_is_not_served(tls_server):
    plaintext = grpc.insecure_channel(tls_server.target)
    assert refused_connection(plaintext) is grpc.StatusCode.UNAVAILABLE


def test_a_client_not_trusting_the_ca_is_not_served(tls_server, tmp_path):
    # trusts only another CA: the server's certificate does not verify
    other = make_ca(tmp_path, "unrelated-ca")[0]
    creds = grpc.ssl_channel_credentials(root_certificates=other.read_bytes())
    channel = grpc.secure_channel(tls_server.target, creds)
    assert refused_connection(channel) is grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_requires_a_client_certificate_from_the_ca(pki, tmp_path):
    server = start_server(
        tmp_path / "mtls.db",
        *tls_flags(pki, mutual=True),
        credentials=credentials(pki, pki.client_cert, pki.client_key),
    )
    try:
        channel = server.channel()
        assert list(list_experiments(channel).experiments) == []
        channel.close()
        without = grpc.secure_channel(server.target, credentials(pki))
        assert refused_connection(without) is grpc.StatusCode.UNAVAILABLE
        stranger = credentials(pki, pki.stranger_cert, pki.stranger_key)
        assert refused_connection(grpc.secure_channel(server.target, stranger)) is (
            grpc.StatusCode.UNAVAILABLE
        )
        plaintext = grpc.insecure_channel(server.target)
        assert refused_connection(plaintext) is grpc.StatusCode.UNAVAILABLE
    finally:
        assert server.stop() == 0


def test_refused_at_start(pki, tmp_path):
    db = tmp_path / "optserve.db"
    cert, key, ca = str(pki.server_cert), str(pki.server_key), str(pki.ca)
    missing = str(tmp_path / "missing.pem")
    cases = {
        ("--tls-cert", cert): "--tls-cert and --tls-key go together",
        ("--tls-key", key): "--tls-cert and --tls-key go together",
        ("--tls-client-ca", ca): "--tls-client-ca needs --tls-cert and --tls-key",
        ("--tls-cert", missing, "--tls-key", key): f"cannot read TLS certificate {missing}",
        ("--tls-cert", cert, "--tls-key", missing): f"cannot read TLS key {missing}",
        ("--tls-cert", cert, "--tls-key", key, "--tls-client-ca", missing): (
            f"cannot read client CA {missing}"
        ),
        # the client's key does not belong to the server's certificate
        ("--tls-cert", cert, "--tls-key", str(pki.client_key)): f"TLS certificate {cert}",
        ("--tls-cert", key, "--tls-key", key): "not a PEM certificate",
        ("--tls-cert", cert, "--tls-key", key, "--tls-client-ca", key): f"client CA {key}",
    }
    for flags, expected in cases.items():
        line = refusal(db, *flags)
        assert expected in line, (flags, line)
    assert not db.exists()  # refused before the storage was touched
