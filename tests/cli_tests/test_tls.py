"""The client commands over TLS and mutual TLS, with the CA and certificates of
tests/reliability/test_tls.py."""

from __future__ import annotations

from ..conftest import start_server
from ..reliability.test_tls import credentials, pki, tls_flags  # noqa: F401  (pki: a fixture)
from .conftest import ok, run_cli


def test_tls_with_the_servers_ca(pki, tmp_path):  # noqa: F811
    server = start_server(tmp_path / "optserve.db", *tls_flags(pki), credentials=credentials(pki))
    try:
        # localhost: the certificate names it (and 127.0.0.1)
        target = "localhost:" + server.target.rsplit(":", 1)[1]
        out = ok(run_cli(target, "experiments", "list", env={"OPTSERVE_TLS_CA": str(pki.ca)}))
        assert out.strip() == "no experiments"
        plaintext = run_cli(target, "experiments", "list")
        assert plaintext.returncode == 1
        assert plaintext.stderr.startswith(f"optserve: cannot reach a server at {target}")
    finally:
        assert server.stop() == 0


def test_mutual_tls_with_a_client_certificate(pki, tmp_path):  # noqa: F811
    client = credentials(pki, pki.client_cert, pki.client_key)
    server = start_server(
        tmp_path / "optserve.db", *tls_flags(pki, mutual=True), credentials=client
    )
    try:
        env = {"OPTSERVE_TLS_CA": str(pki.ca)}
        refused = run_cli(server.target, "experiments", "list", env=env)
        assert refused.returncode == 1
        env |= {"OPTSERVE_TLS_CERT": str(pki.client_cert), "OPTSERVE_TLS_KEY": str(pki.client_key)}
        out = ok(run_cli(server.target, "experiments", "list", env=env))
        assert out.strip() == "no experiments"
        half = run_cli(
            server.target,
            "experiments",
            "list",
            "--tls-cert",
            str(pki.client_cert),
            env={"OPTSERVE_TLS_CA": str(pki.ca)},
        )
        assert half.stderr.strip() == (
            "optserve: --tls-cert and --tls-key (OPTSERVE_TLS_CERT, _KEY) go together"
        )
    finally:
        assert server.stop() == 0
