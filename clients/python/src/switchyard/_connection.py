"""How a `Client` reaches the broker: the channel's transport security and the bearer token.

TLS is on for an ``https://`` target or when any TLS option is given; without a CA it verifies the
broker against grpc's default roots (the system's). The token goes out as ``authorization: Bearer
<token>`` through an interceptor rather than call credentials, because grpc sends call credentials
over TLS only, and the broker takes tokens over plaintext too (on loopback, say), as the Rust client
sends them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

PemSource = str | os.PathLike[str] | bytes
"""PEM given as its bytes, or as the path of a file holding it."""

_HTTPS = "https://"
_HTTP = "http://"


def _read_pem(source: PemSource | None) -> bytes | None:
    """The PEM itself: bytes are taken as they are, anything else is a path to read."""
    if source is None or isinstance(source, bytes):
        return source
    return Path(source).read_bytes()


def _bearer_header(token: str) -> str:
    """The metadata value for `token`, refused up front (without repeating it) if grpc could not send
    it, rather than failing every call later."""
    if not token or not all(" " <= char <= "~" for char in token):
        raise ValueError("the token must be non-empty printable ASCII to be sent as gRPC metadata")
    return f"Bearer {token}"


class _BearerToken:
    """Adds the ``authorization`` metadata to a call. grpc.aio files each interceptor under the first
    of the four call kinds it is an instance of, so each kind has its own subclass below (whose grpc
    base class is `Any` to mypy: grpcio ships no type hints)."""

    def __init__(self, header: str) -> None:
        self._header = header

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<hidden>)"  # the token must not end up in a log line

    def _with_token(self, details: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add("authorization", self._header)
        return details._replace(metadata=metadata)


class _UnaryUnary(_BearerToken, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._with_token(client_call_details), request)


class _UnaryStream(_BearerToken, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._with_token(client_call_details), request)


class _StreamUnary(_BearerToken, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, requests: Any) -> Any:
        return await continuation(self._with_token(client_call_details), requests)


class _StreamStream(_BearerToken, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, requests: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), requests)


def _token_interceptors(token: str | None) -> list[Any]:
    if token is None:
        return []
    header = _bearer_header(token)
    return [kind(header) for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]


def open_channel(
    target: str,
    *,
    options: Sequence[tuple[str, Any]],
    token: str | None,
    tls_ca: PemSource | None,
    tls_cert: PemSource | None,
    tls_key: PemSource | None,
    tls_server_name: str | None,
) -> grpc.aio.Channel:
    """The channel to `target` (``host:port``, optionally ``http://`` or ``https://`` first, or any
    grpc target) with the security and the token asked for. Raises `ValueError` for options that
    contradict each other, and `OSError` for a PEM file that cannot be read."""
    tls_option = any(option is not None for option in (tls_ca, tls_cert, tls_key, tls_server_name))
    if target.startswith(_HTTP) and tls_option:
        raise ValueError(f"{target} is plaintext (http://) but TLS options were given")
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("mutual TLS needs both tls_cert and tls_key")
    tls = target.startswith(_HTTPS) or tls_option
    address = target.removeprefix(_HTTPS).removeprefix(_HTTP)
    channel_options = list(options)
    if tls_server_name is not None:
        # The name the broker's certificate is checked against (and sent as SNI) instead of the host.
        channel_options.append(("grpc.ssl_target_name_override", tls_server_name))
    interceptors = _token_interceptors(token)
    if not tls:
        return grpc.aio.insecure_channel(address, options=channel_options, interceptors=interceptors)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read_pem(tls_ca),  # None: grpc's default roots
        private_key=_read_pem(tls_key),
        certificate_chain=_read_pem(tls_cert),
    )
    return grpc.aio.secure_channel(address, credentials, options=channel_options, interceptors=interceptors)


# Health answers without a token, so the probe tells about the connection itself, not about auth.
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_PROBE_TIMEOUT = 1.0


async def why_unreachable(channel: grpc.aio.Channel) -> str:
    """grpc's account of the last failed connection attempt ("Socket closed", a TLS handshake that
    failed and why), or "" if there is none. Waiting for the channel to be ready says only that it is
    not; one fail-fast call is what hands back the transport's last error."""
    probe = channel.unary_unary(_HEALTH_CHECK)
    try:
        await probe(b"", timeout=_PROBE_TIMEOUT, wait_for_ready=False)  # b"": Check for the whole server
    except grpc.aio.AioRpcError as error:
        return error.details() or ""
    return ""
