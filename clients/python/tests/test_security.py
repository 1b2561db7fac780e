"""TLS, mutual TLS and bearer tokens, against real brokers that ask for them.

Three brokers for this module: one with TLS and a token file, one with mutual TLS, and one with a
token but no TLS. Their certificates
are made at run time by `certs.make_certificates`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from certs import Certificates, make_certificates
from conftest import WAIT, run_broker, within

from switchyard import Client, Message, PermissionDenied, Unauthenticated, Unavailable
from switchyard.v1 import broker_pb2, broker_pb2_grpc

ADMIN_TOKEN = "admin-token-for-tests"
# May publish (anywhere) and subscribe, but is no admin.
PUBLISHER_TOKEN = "publisher-token-for-tests"
# May subscribe, but publish nowhere.
READER_TOKEN = "reader-token-for-tests"
# How long a client that cannot connect tries before `connect` gives up: a failing handshake fails at
# once, so this only bounds the test.
CONNECT_TIMEOUT = 1.0
# How grpc words a certificate it does not trust.
UNTRUSTED = r"CERTIFICATE_VERIFY_FAILED|Tls handshake failed"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _tls_flags(certificates: Certificates) -> list[str]:
    return ["--tls-cert", str(certificates.server.cert), "--tls-key", str(certificates.server.key)]


@pytest.fixture(scope="module")
def tls_address(certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker with TLS and authentication on."""
    directory = tmp_path_factory.mktemp("tls-broker")
    tokens = directory / "tokens.json"
    tokens.write_text(
        json.dumps(
            {
                "tokens": [
                    {"name": "ops", "token": ADMIN_TOKEN, "admin": True},
                    {"name": "publisher", "token": PUBLISHER_TOKEN},
                    {"name": "reader", "token": READER_TOKEN, "publish": {"allow": []}},
                ]
            }
        )
    )
    with run_broker(directory, [*_tls_flags(certificates), "--auth-file", str(tokens)]) as broker:
        yield broker.address


@pytest.fixture(scope="module")
def mtls_address(certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker with TLS that asks every client for a certificate signed by the test CA."""
    flags = [*_tls_flags(certificates), "--tls-client-ca", str(certificates.ca)]
    with run_broker(tmp_path_factory.mktemp("mtls-broker"), flags) as broker:
        yield broker.address


@pytest.fixture(scope="module")
def plaintext_token_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker with authentication on and no TLS (the broker warns; fine on loopback)."""
    with run_broker(tmp_path_factory.mktemp("token-broker"), ["--auth-token", ADMIN_TOKEN]) as broker:
        yield broker.address


async def _refused_at_connect(client: Client, match: str) -> None:
    """`connect` fails with an `Unavailable` whose message matches `match`; the client is closed."""
    try:
        with pytest.raises(Unavailable, match=match):
            await client.connect(timeout=CONNECT_TIMEOUT)
    finally:
        await client.close()


def _cannot_connect_to(address: str) -> str:
    return re.escape(f"cannot connect to {address}")


async def _roundtrip(client: Client, topic: str) -> None:
    """A publish reaches a subscription on the same client: unary calls and a stream both get through."""
    async with client.subscribe(topic) as subscription:
        await within(client.publish(topic, b"over TLS"))
        event = await within(anext(subscription))
    assert isinstance(event, Message)
    assert event.payload == b"over TLS"


async def test_tls_and_a_token_reach_the_broker(
    certificates: Certificates, tls_address: str, ns: str
) -> None:
    """With the CA as a path and a known token, publish, subscribe and admin calls all work."""
    async with Client(tls_address, timeout=WAIT, tls_ca=certificates.ca, token=ADMIN_TOKEN) as client:
        await _roundtrip(client, f"{ns}.orders")
        await within(client.admin.declare_group(f"{ns}.jobs", "workers"))
        assert (f"{ns}.jobs", "workers") in [(g.topic, g.group) for g in await client.admin.list_groups()]
        await within(client.admin.delete_group(f"{ns}.jobs", "workers"))


async def test_an_https_target_with_the_ca_as_bytes(
    certificates: Certificates, tls_address: str, ns: str
) -> None:
    """``https://`` in front of the address is accepted, and the CA may be given as PEM bytes."""
    ca = certificates.ca.read_bytes()
    async with Client(f"https://{tls_address}", timeout=WAIT, tls_ca=ca, token=ADMIN_TOKEN) as client:
        await _roundtrip(client, f"{ns}.orders")


async def test_a_token_over_plaintext_reaches_every_kind_of_call(
    plaintext_token_address: str, ns: str
) -> None:
    """The token goes with unary calls, server streams and, through `client.channel` and the
    generated stub, bidirectional streams, also without TLS."""
    async with Client(plaintext_token_address, timeout=WAIT, token=ADMIN_TOKEN) as client:
        await _roundtrip(client, f"{ns}.orders")
        stub = broker_pb2_grpc.BrokerStub(client.channel)  # type: ignore[no-untyped-call]
        frame = broker_pb2.PublishStreamRequest(
            sequence=7, messages=[broker_pb2.Message(topic=f"{ns}.orders", payload=b"x")]
        )
        call = stub.PublishStream(iter([frame]), timeout=WAIT)
        answers = [answer async for answer in call]
        assert [(a.sequence, a.WhichOneof("result")) for a in answers] == [(7, "published")]


async def test_the_server_name_can_be_overridden(certificates: Certificates, tls_address: str) -> None:
    """`tls_server_name` is the name the certificate is checked against: one it holds (localhost)
    connects to 127.0.0.1, one it does not is refused in the handshake."""
    async with Client(
        tls_address, timeout=WAIT, tls_ca=certificates.ca, tls_server_name="localhost", token=ADMIN_TOKEN
    ) as client:
        await within(client.admin.list_groups())
    await _refused_at_connect(
        Client(tls_address, tls_ca=certificates.ca, tls_server_name="broker.elsewhere.test"),
        "Hostname Verification",
    )


async def test_a_wrong_token_is_unauthenticated(
    certificates: Certificates, tls_address: str, ns: str
) -> None:
    """An unknown token is refused with `Unauthenticated`, on unary calls and on streams."""
    async with Client(tls_address, timeout=WAIT, tls_ca=certificates.ca, token="not-a-token") as client:
        with pytest.raises(Unauthenticated) as refused:
            await within(client.publish(f"{ns}.orders", b"x"))
        assert refused.value.reason == "UNAUTHENTICATED"
        with pytest.raises(Unauthenticated, check=lambda e: e.reason == "UNAUTHENTICATED"):
            await within(client.subscribe(f"{ns}.orders").__aenter__())


async def test_no_token_is_unauthenticated(certificates: Certificates, tls_address: str, ns: str) -> None:
    """TLS alone is not enough for a broker with authentication on."""
    async with Client(tls_address, timeout=WAIT, tls_ca=certificates.ca) as client:
        with pytest.raises(Unauthenticated, check=lambda e: e.reason == "UNAUTHENTICATED"):
            await within(client.publish(f"{ns}.orders", b"x"))
        with pytest.raises(Unauthenticated, check=lambda e: e.reason == "UNAUTHENTICATED"):
            await within(client.admin.list_groups())


async def test_a_token_without_admin_is_permission_denied(
    certificates: Certificates, tls_address: str
) -> None:
    """A known token that may not administer groups gets `PermissionDenied` for an admin call."""
    async with Client(tls_address, timeout=WAIT, tls_ca=certificates.ca, token=PUBLISHER_TOKEN) as client:
        with pytest.raises(PermissionDenied) as refused:
            await within(client.admin.list_groups())
    assert refused.value.reason == "NOT_ADMIN"
    assert refused.value.metadata == {"token": "publisher"}


async def test_a_token_that_may_not_publish_there_is_permission_denied(
    certificates: Certificates, tls_address: str, ns: str
) -> None:
    """PERMISSION_DENIED names the token, the action and the topic, and the field it came in."""
    async with Client(tls_address, timeout=WAIT, tls_ca=certificates.ca, token=READER_TOKEN) as client:
        with pytest.raises(PermissionDenied) as refused:
            await within(client.publish(f"{ns}.orders", b"x"))
    assert refused.value.reason == "PERMISSION_DENIED"
    assert refused.value.metadata == {"token": "reader", "action": "publish", "topic": f"{ns}.orders"}
    assert refused.value.field == "messages[0].topic"


async def test_the_system_roots_do_not_trust_the_test_ca(tls_address: str) -> None:
    """Without `tls_ca` the broker's certificate is checked against the system's roots, which do not
    hold a CA made a moment ago: the handshake fails, and `connect` says why."""
    await _refused_at_connect(Client(f"https://{tls_address}", token=ADMIN_TOKEN), UNTRUSTED)


async def test_a_plaintext_client_cannot_reach_a_tls_broker(tls_address: str) -> None:
    """A client without TLS is turned away at the connection, with an `Unavailable` naming the
    address, before any call."""
    await _refused_at_connect(Client(tls_address, token=ADMIN_TOKEN), _cannot_connect_to(tls_address))


async def test_mutual_tls_with_a_client_certificate(
    certificates: Certificates, mtls_address: str, ns: str
) -> None:
    """With the client's certificate and key (here as PEM bytes), the mutual TLS broker serves it."""
    async with Client(
        mtls_address,
        timeout=WAIT,
        tls_ca=certificates.ca,
        tls_cert=certificates.client.cert.read_bytes(),
        tls_key=certificates.client.key.read_bytes(),
    ) as client:
        await _roundtrip(client, f"{ns}.orders")


async def test_mutual_tls_without_a_client_certificate(certificates: Certificates, mtls_address: str) -> None:
    """Without a certificate, the mutual TLS broker ends the handshake: no connection."""
    await _refused_at_connect(Client(mtls_address, tls_ca=certificates.ca), _cannot_connect_to(mtls_address))


async def test_options_that_cannot_work_are_refused_up_front(
    certificates: Certificates, tmp_path: Path
) -> None:
    """Contradicting options, an unreadable PEM file and a token that is not metadata are refused when
    the client is made, and the token is not repeated in the error."""
    with pytest.raises(ValueError, match="both tls_cert and tls_key"):
        Client("127.0.0.1:1", tls_cert=certificates.client.cert)
    with pytest.raises(ValueError, match=r"plaintext \(http://\)"):
        Client("http://127.0.0.1:1", tls_ca=certificates.ca)
    with pytest.raises(FileNotFoundError):
        Client("127.0.0.1:1", tls_ca=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="printable ASCII") as refused:
        Client("127.0.0.1:1", token="s3cret\n")
    assert "s3cret" not in str(refused.value)
