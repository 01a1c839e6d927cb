"""TLS channel credentials from arguments or the environment."""

from __future__ import annotations

import os
from pathlib import Path

import grpc

__all__ = ["CA_ENV", "CERT_ENV", "KEY_ENV", "SERVER_NAME_ENV", "TLS_ENV", "Pem", "credentials"]

TLS_ENV = "OPTSERVE_TLS"
CA_ENV = "OPTSERVE_TLS_CA"
CERT_ENV = "OPTSERVE_TLS_CERT"
KEY_ENV = "OPTSERVE_TLS_KEY"
SERVER_NAME_ENV = "OPTSERVE_TLS_SERVER_NAME"

# PEM text (bytes, or a str starting with "-----BEGIN") or the path of a PEM file.
Pem = bytes | str | os.PathLike[str]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _pem(value: Pem, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    text = os.fspath(value)
    if text.lstrip().startswith("-----BEGIN"):
        return text.encode()
    try:
        return Path(text).read_bytes()
    except OSError as exc:
        raise ValueError(f"{what}: cannot read {text}: {exc.strerror}") from None


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"${name}: {raw!r} is not one of 1, true, yes, on, 0, false, no, off")


def credentials(
    tls: bool | None,
    ca: Pem | None,
    cert: Pem | None,
    key: Pem | None,
) -> grpc.ChannelCredentials | None:
    """Channel credentials, or None for a plaintext channel.

    Each of ``ca``, ``cert`` and ``key`` defaults to its environment variable
    (``OPTSERVE_TLS_CA``, ``OPTSERVE_TLS_CERT``, ``OPTSERVE_TLS_KEY``: a PEM
    file's path). TLS is on when ``tls`` is true, or (``tls`` None) when
    ``$OPTSERVE_TLS`` is true or any of the three is given; without ``ca`` the
    system's root certificates verify the server. Given arguments win over
    the environment.
    """
    explicit = any(v is not None for v in (ca, cert, key))
    if tls is False:
        if explicit:
            raise ValueError("tls=False with TLS certificates given")
        return None
    ca = ca if ca is not None else os.environ.get(CA_ENV) or None
    cert = cert if cert is not None else os.environ.get(CERT_ENV) or None
    key = key if key is not None else os.environ.get(KEY_ENV) or None
    if tls is None and not explicit:
        tls = _env_flag(TLS_ENV)
        if tls is None:
            tls = any(v is not None for v in (ca, cert, key))
        if not tls:
            return None
    if (cert is None) != (key is None):
        raise ValueError(
            "a client certificate needs its private key and the other way round "
            f"(tls_cert / ${CERT_ENV} and tls_key / ${KEY_ENV})"
        )
    return grpc.ssl_channel_credentials(
        root_certificates=None if ca is None else _pem(ca, "tls_ca"),
        private_key=None if key is None else _pem(key, "tls_key"),
        certificate_chain=None if cert is None else _pem(cert, "tls_cert"),
    )
