"""TLS from mounted files (cert-manager's Secret shape: tls.crt, tls.key, ca.crt).

Everything is optional: with no GOV_TLS_* variable set, traffic stays as it was (plaintext gRPC
inside the cluster; PostgreSQL and NATS as their URLs say). TLS encrypts and authenticates the
server; callers are still authenticated by their bearer token on every call, whatever the transport.

Files are read when a server, channel or connection is made, so a rotated certificate is picked
up by the next process start (cert-manager renews well before expiry; a rollout restarts pods).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Protocol

import grpc


class GrpcTls(Protocol):
    """The settings fields this module reads (govkit.config.BaseSettings has them)."""

    tls_grpc_cert_file: str | None
    tls_grpc_key_file: str | None
    tls_grpc_ca_file: str | None
    tls_grpc_client_auth: bool


def grpc_enabled(settings: GrpcTls) -> bool:
    return bool(settings.tls_grpc_cert_file)


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def server_credentials(settings: GrpcTls) -> grpc.ServerCredentials | None:
    """Credentials for the gRPC port, or None for plaintext. Client certificates are asked for only
    when GOV_TLS_GRPC_CLIENT_AUTH is set (then a caller without one signed by the CA cannot connect
    at all); the token is checked either way."""
    if not grpc_enabled(settings):
        return None
    key, cert = _read(settings.tls_grpc_key_file), _read(settings.tls_grpc_cert_file)
    assert key is not None and cert is not None  # config validation requires both
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=_read(settings.tls_grpc_ca_file),
        require_client_auth=settings.tls_grpc_client_auth,
    )


def channel_credentials(settings: GrpcTls) -> grpc.ChannelCredentials | None:
    """Credentials for channels to other components, or None for plaintext. The server is checked
    against the CA; this component's own certificate goes along as a client certificate, which
    servers that require client auth verify (others ignore it)."""
    if not settings.tls_grpc_ca_file:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(settings.tls_grpc_ca_file),
        private_key=_read(settings.tls_grpc_key_file),
        certificate_chain=_read(settings.tls_grpc_cert_file),
    )


def client_context(ca_file: str) -> ssl.SSLContext:
    """A client SSLContext that trusts only `ca_file` and checks the server's name (PostgreSQL's
    sslmode=verify-full, NATS)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def check_ca(path: str) -> None:
    """Raises ValueError unless `path` is a readable PEM bundle with at least one certificate."""
    try:
        client_context(path)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"not a readable CA bundle: {path} ({exc})") from None


def check_pair(cert: str, key: str) -> None:
    """Raises ValueError unless `cert` and `key` are readable PEM files that belong together."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"not a readable certificate and key pair: {cert}, {key} ({exc})") from None
